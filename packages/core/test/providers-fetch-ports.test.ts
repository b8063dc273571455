/**
 * fetch refuses to call some ports (the Fetch standard's "bad ports"),
 * whatever listens there: a provider base URL or an attachment URL on one
 * of them could never be called. Each test compares Parley with the
 * runtime's own fetch, port by port, over every port there is.
 */
import { beforeAll, describe, expect, it } from 'vitest'
import { fetchAttachment } from '../src/providers/attachments.js'
import { createSendGridProvider } from '../src/providers/sendgrid-provider.js'
import { createTwilioProvider } from '../src/providers/twilio-provider.js'
import {
  fetchThatMustNotRun,
  redirect,
  startTestServer,
} from './providers-support.js'

const ALL_PORTS = Array.from({ length: 65_535 }, (_, i) => i + 1)

// The ports this runtime's fetch refuses, asked of fetch itself. Its
// dispatcher fails every request it is handed, so nothing connects
// anywhere: a refused port fails before any dispatcher is asked.
async function portsFetchRefuses(): Promise<Set<number>> {
  const offline = {
    dispatch(_options: unknown, handler: { onError(error: Error): void }) {
      queueMicrotask(() => handler.onError(new Error('offline')))
      return true
    },
  }
  const refused = new Set<number>()
  for (const port of ALL_PORTS) {
    const init = { dispatcher: offline } as RequestInit
    const cause = await fetch(`http://127.0.0.1:${port}/`, init).then(
      () => undefined,
      (error: { cause?: { message?: string } }) => error.cause?.message,
    )
    if (cause === 'bad port') refused.add(port)
    else expect(cause, `port ${port}`).toBe('offline')
  }
  return refused
}

let refusedByFetch: Set<number>

beforeAll(async () => {
  refusedByFetch = await portsFetchRefuses()
  // Sanity: the runtime does refuse some (the standard lists 6000).
  expect(refusedByFetch.has(6000)).toBe(true)
}, 60_000)

function refusedBy(build: (baseUrl: string) => unknown): Set<number> {
  const refused = new Set<number>()
  for (const port of ALL_PORTS) {
    try {
      build(`http://127.0.0.1:${port}`)
    } catch (error) {
      expect(error).toBeInstanceOf(RangeError)
      expect((error as Error).message).toBe(
        `baseUrl uses port ${port}, which fetch refuses to call, as ` +
          `browsers do (received http://127.0.0.1:${port}/)`,
      )
      refused.add(port)
    }
  }
  return refused
}

describe('a provider base URL on a port fetch refuses', () => {
  it('is refused by the Twilio adapter on exactly the ports fetch refuses', () => {
    const refused = refusedBy((baseUrl) =>
      createTwilioProvider({ accountSid: 'AC1', authToken: 't', baseUrl }),
    )

    expect([...refused]).toEqual([...refusedByFetch])
  })

  it('is refused by the SendGrid adapter on exactly the ports fetch refuses', () => {
    const refused = refusedBy((baseUrl) =>
      createSendGridProvider({ apiKey: 'SG.k', baseUrl }),
    )

    expect([...refused]).toEqual([...refusedByFetch])
  })
})

describe('an attachment URL on a port fetch refuses', () => {
  const limits = { maxBytes: 1024, timeoutMs: 2000, allowPrivate: true }

  it('fails for good before any fetch, on exactly the ports fetch refuses', async () => {
    const fetched = new Set<number>()
    const counting: typeof fetch = (input) => {
      fetched.add(Number(new URL(String(input)).port))
      return Promise.resolve(new Response('x'))
    }
    const refused = new Set<number>()
    for (const port of ALL_PORTS) {
      const url = `http://127.0.0.1:${port}/a.png`
      const result = await fetchAttachment(url, { ...limits, fetch: counting })
      if (result.kind === 'fetched') continue
      expect(result).toEqual({
        kind: 'permanent',
        error: `attachment ${url}: port ${port} is one that fetch refuses to call`,
      })
      refused.add(port)
    }

    expect([...refused]).toEqual([...refusedByFetch])
    expect(fetched.size + refused.size).toBe(ALL_PORTS.length)
  })

  it('fails for good when a redirect leads to such a port', async () => {
    const server = await startTestServer({
      '/moved': redirect('http://127.0.0.1:6000/a.png'),
    })
    try {
      const result = await fetchAttachment(`${server.url}/moved`, limits)

      expect(result).toEqual({
        kind: 'permanent',
        error: `attachment ${server.url}/moved: port 6000 is one that fetch refuses to call`,
      })
    } finally {
      await server.close()
    }
  })

  it('is checked before the host, whose lookup is never made', async () => {
    const result = await fetchAttachment('http://example.com:10080/a.png', {
      ...limits,
      allowPrivate: false,
      fetch: fetchThatMustNotRun(),
      lookup: () => Promise.reject(new Error('the test expected no lookup')),
    })

    expect(result).toEqual({
      kind: 'permanent',
      error:
        'attachment http://example.com:10080/a.png: port 10080 is one that fetch refuses to call',
    })
  })
})

describe('port 0, which no connection can reach', () => {
  it('is refused as a base URL by both adapters', () => {
    const twilio = () =>
      createTwilioProvider({
        accountSid: 'AC1',
        authToken: 't',
        baseUrl: 'http://127.0.0.1:0',
      })
    const sendGrid = () =>
      createSendGridProvider({ apiKey: 'k', baseUrl: 'https://[::1]:0/v' })

    expect(twilio).toThrow(
      new RangeError(
        'baseUrl uses port 0, which no connection can reach (received http://127.0.0.1:0/)',
      ),
    )
    expect(sendGrid).toThrow(
      new RangeError(
        'baseUrl uses port 0, which no connection can reach (received https://[::1]:0/v)',
      ),
    )
  })

  it('fails an attachment for good, directly or through a redirect', async () => {
    const limits = { maxBytes: 1024, timeoutMs: 2000, allowPrivate: true }
    const server = await startTestServer({
      '/moved': redirect('http://127.0.0.1:0/a.png'),
    })
    try {
      const direct = await fetchAttachment('http://127.0.0.1:0/a.png', {
        ...limits,
        fetch: fetchThatMustNotRun(),
      })
      const redirected = await fetchAttachment(`${server.url}/moved`, limits)

      expect(direct).toEqual({
        kind: 'permanent',
        error:
          'attachment http://127.0.0.1:0/a.png: port 0 cannot be connected to',
      })
      expect(redirected).toEqual({
        kind: 'permanent',
        error: `attachment ${server.url}/moved: port 0 cannot be connected to`,
      })
    } finally {
      await server.close()
    }
  })
})
