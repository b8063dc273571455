/**
 * The fetch `parley serve` gives the SendGrid adapter for attachments:
 * unless private hosts are allowed, its connections resolve through
 * core's publicAddressLookup, so a name that resolves to a private
 * address when connecting (DNS rebinding, after the adapter's own check
 * saw a public one) is never connected to.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { attachmentFetch } from '../src/attachment-fetch.js'

let server: Server | undefined

afterEach(async () => {
  server?.closeAllConnections()
  await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined))
  server = undefined
})

// A loopback server that counts the connections made to it.
async function loopbackServer(): Promise<{
  port: number
  connections: () => number
}> {
  let connections = 0
  server = createServer((_request, response) => response.end('secret'))
  server.on('connection', () => (connections += 1))
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    connections: () => connections,
  }
}

describe('the attachment fetch of parley serve', () => {
  it('never connects to a name that resolves to a private address when connecting', async () => {
    const { port, connections } = await loopbackServer()
    const fetch = attachmentFetch({
      allowPrivate: false,
      resolve: async () => [{ address: '127.0.0.1', family: 4 }],
    })

    const answer = fetch!(`http://files.example:${port}/a.png`)

    const error = await answer.then(
      () => undefined,
      (thrown: unknown) => thrown,
    )
    expect(error).toBeInstanceOf(Error)
    expect(String((error as Error).cause)).toContain(
      'files.example has the loopback address 127.0.0.1 when connecting',
    )
    expect(connections()).toBe(0)
  })

  it('is the adapter default (any address) when API_ATTACHMENT_ALLOW_PRIVATE is on', () => {
    expect(attachmentFetch({ allowPrivate: true })).toBeUndefined()
  })
})
