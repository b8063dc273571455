import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http'
import type { AddressInfo } from 'node:net'
import type { OutboundMessage, SendContext } from '../src/providers/provider.js'

// Every test here talks to the mock provider server over loopback only.
export {
  type MockProviderServer,
  startMockProviderServer,
} from '@parley/server'

/** An outbound SMS as the dispatcher hands it to a provider. */
export function sms(overrides: Partial<OutboundMessage> = {}): OutboundMessage {
  return {
    id: '41',
    channel: 'sms',
    from: '+18045551234',
    to: '+12025550100',
    subject: null,
    body: 'Hello there',
    attachments: [],
    timestamp: '2024-11-01T14:00:00.000Z',
    ...overrides,
  }
}

/** An outbound email as the dispatcher hands it to a provider. */
export function email(
  overrides: Partial<OutboundMessage> = {},
): OutboundMessage {
  return {
    id: '42',
    channel: 'email',
    from: 'Ann Lee <ann@example.com>',
    to: 'bob@example.com',
    subject: 'Hi',
    body: '<p>Hello</p>',
    attachments: [],
    timestamp: '2024-11-01T14:00:00.000Z',
    ...overrides,
  }
}

/** A send context for `attempt`, with a signal that never fires. */
export function attemptNo(attempt = 1, signal?: AbortSignal): SendContext {
  return { attempt, signal: signal ?? new AbortController().signal }
}

/** Answers one request of a {@link TestServer}. */
export type Route = (request: IncomingMessage, response: ServerResponse) => void

/** A tiny loopback HTTP server of the test's own. */
export interface TestServer {
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  /** The paths requested, in order. */
  readonly hits: string[]
  close(): Promise<void>
}

/**
 * Serves `routes` (by path) on 127.0.0.1; other paths are 404. Held
 * connections are dropped on close.
 */
export async function startTestServer(
  routes: Readonly<Record<string, Route>>,
): Promise<TestServer> {
  const hits: string[] = []
  const server = createServer((request, response) => {
    const path = request.url ?? '/'
    hits.push(path)
    const route = routes[path.split('?')[0] ?? '/']
    if (route === undefined) {
      response.writeHead(404).end('not here')
      return
    }
    route(request, response)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}`, hits, close: () => stop(server) }
}

function stop(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  })
}

/** A route that answers `body` with `headers`. */
export function file(
  body: string | Uint8Array,
  headers: Record<string, string> = {},
): Route {
  return (_request, response) => {
    response.writeHead(200, headers).end(body)
  }
}

/** A route that redirects to `location` with `status`. */
export function redirect(location: string, status = 302): Route {
  return (_request, response) => {
    response.writeHead(status, { location }).end()
  }
}

/** A route that answers `status` with a short body. */
export function status(code: number): Route {
  return (_request, response) => {
    response.writeHead(code).end(`status ${code}`)
  }
}

/** A fetch that fails the test if it is ever called. */
export function fetchThatMustNotRun(): typeof fetch {
  return () => {
    throw new Error('the test expected no connection at all')
  }
}

/**
 * A fetch that sends requests for `http://<name>/...` to `target` (a
 * loopback server) instead, so that a test can give a loopback server a
 * public-looking name, and refuses every other URL.
 */
export function fetchRoutingName(name: string, target: string): typeof fetch {
  return (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input))
    if (url.hostname !== name) {
      throw new Error(`the test expected no connection to ${url.hostname}`)
    }
    return fetch(`${target}${url.pathname}${url.search}`, init)
  }
}

/**
 * A resolver that knows only `names`: each gives its addresses, or fails
 * with the error given. Any other name is an unexpected lookup.
 */
export function fakeLookup(
  names: Readonly<Record<string, readonly string[] | Error>>,
) {
  return async (hostname: string) => {
    const answer = names[hostname]
    if (answer === undefined) {
      throw new Error(`the test expected no lookup of ${hostname}`)
    }
    if (answer instanceof Error) throw answer
    return answer.map((address) => ({ address }))
  }
}

/** A resolver error with a system code such as `ENOTFOUND`. */
export function dnsError(code: string): Error {
  return Object.assign(new Error(`getaddrinfo ${code}`), { code })
}
