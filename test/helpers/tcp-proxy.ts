/**
 * A TCP proxy on loopback that a test can cut, stall and restore: it stands
 * between a server and its database, so that a test can make the database
 * stop answering without touching the database itself.
 */
import { createServer, type Server, Socket } from 'node:net'

/** What the proxy does with traffic. */
export type ProxyMode =
  /** Forwards both ways. */
  | 'open'
  /** Holds every byte, both ways, and new connections too: no answer. */
  | 'stalled'
  /** Resets every connection, and each new one as it arrives. */
  | 'cut'

interface Pair {
  readonly client: Socket
  readonly upstream: Socket
  /** Bytes held while stalled, per direction. */
  readonly held: { toUpstream: Buffer[]; toClient: Buffer[] }
}

/** A running proxy. */
export interface TcpProxy {
  /** The port it listens on, on 127.0.0.1. */
  readonly port: number
  readonly mode: ProxyMode
  /** Connections accepted so far. */
  readonly accepted: number
  /** Resets every connection and refuses new ones until restored. */
  cut(): void
  /** Stops forwarding (holding the bytes) until restored. */
  stall(): void
  /** Forwards again; bytes held while stalled go through first. */
  restore(): void
  /** Closes the listener and every connection. */
  close(): Promise<void>
}

/** Starts a proxy from a free loopback port to `target`. */
export async function startTcpProxy(target: {
  host: string
  port: number
}): Promise<TcpProxy> {
  const pairs = new Set<Pair>()
  let mode: ProxyMode = 'open'
  let accepted = 0

  const server = createServer((client) => {
    accepted += 1
    client.on('error', () => undefined)
    if (mode === 'cut') {
      client.resetAndDestroy()
      return
    }
    const upstream = new Socket()
    const pair: Pair = {
      client,
      upstream,
      held: { toUpstream: [], toClient: [] },
    }
    pairs.add(pair)
    upstream.connect(target.port, target.host)
    wire(
      pair,
      () => mode,
      () => pairs.delete(pair),
    )
  })
  await listen(server)
  const port = (server.address() as { port: number }).port

  return {
    port,
    get mode() {
      return mode
    },
    get accepted() {
      return accepted
    },
    cut() {
      mode = 'cut'
      for (const pair of pairs) destroyPair(pair)
      pairs.clear()
    },
    stall() {
      mode = 'stalled'
    },
    restore() {
      mode = 'open'
      for (const pair of pairs) flush(pair)
    },
    async close() {
      for (const pair of pairs) destroyPair(pair)
      pairs.clear()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

function wire(pair: Pair, mode: () => ProxyMode, forget: () => void): void {
  const { client, upstream, held } = pair
  client.on('data', (chunk: Buffer) => {
    if (mode() === 'open') upstream.write(chunk)
    else held.toUpstream.push(chunk)
  })
  upstream.on('data', (chunk: Buffer) => {
    if (mode() === 'open') client.write(chunk)
    else held.toClient.push(chunk)
  })
  const end = () => {
    forget()
    destroyPair(pair)
  }
  for (const socket of [client, upstream]) {
    socket.on('error', end)
    socket.on('close', end)
  }
}

function flush(pair: Pair): void {
  const { client, upstream, held } = pair
  for (const chunk of held.toUpstream.splice(0)) upstream.write(chunk)
  for (const chunk of held.toClient.splice(0)) client.write(chunk)
}

function destroyPair(pair: Pair): void {
  if (!pair.client.destroyed) pair.client.resetAndDestroy()
  pair.upstream.destroy()
}

function listen(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
}
