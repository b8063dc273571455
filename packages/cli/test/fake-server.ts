import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http'
import { createServer as createNetServer, type AddressInfo } from 'node:net'
import { afterAll, beforeAll, beforeEach } from 'vitest'

/** A request the fake server received. */
export interface RecordedRequest {
  method: string
  url: string
  headers: IncomingHttpHeaders
  body: string
}

/** What the fake server answers. */
export interface FakeAnswer {
  status: number
  body: unknown
  headers?: Record<string, string>
}

/** Decides the answer to a request. */
export type FakeHandler = (request: RecordedRequest) => FakeAnswer

/** A stand-in Parley server on loopback that records what it receives. */
export interface FakeServer {
  url: string
  requests: RecordedRequest[]
  answerWith(handler: FakeHandler): void
  close(): Promise<void>
}

const notFound: FakeHandler = () => ({
  status: 404,
  body: { code: 'not_found', message: 'no such route', request_id: 'r-404' },
})

/** Starts a fake server on 127.0.0.1 and a free port. */
export async function startFakeServer(): Promise<FakeServer> {
  const requests: RecordedRequest[] = []
  let handler = notFound
  const server = createServer((request, response) => {
    void record(request).then((recorded) => {
      requests.push(recorded)
      answer(response, handler(recorded))
    })
  })
  await listen(server)

  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    answerWith: (next) => void (handler = next),
    close: () => close(server),
  }
}

/**
 * One fake server for the whole test file, started before its first test
 * and closed after its last. Before each test it forgets the requests it
 * received and answers with `answer` again, so that no test sees what
 * another one asked or set. Call it at the top level of the file.
 */
export function useFakeServer(answer: FakeHandler = notFound): FakeServer {
  let server: FakeServer | undefined
  const started = (): FakeServer => {
    if (server !== undefined) return server
    throw new Error('the fake server is used before its beforeAll started it')
  }

  beforeAll(async () => void (server = await startFakeServer()))
  afterAll(() => server?.close())
  beforeEach(() => {
    started().requests.length = 0
    started().answerWith(answer)
  })

  // Getters, because the server starts only once the hooks run.
  return {
    get url() {
      return started().url
    },
    get requests() {
      return started().requests
    },
    answerWith: (handler) => started().answerWith(handler),
    close: () => started().close(),
  }
}

/** A handler that gives every request the same answer. */
export function answerAlways(
  status: number,
  body: unknown,
  headers?: Record<string, string>,
): FakeHandler {
  return () => ({ status, body, headers })
}

/** A list page with no items, as the server answers an empty list. */
export const emptyPage = {
  items: [],
  meta: { page: 1, page_size: 50, total: 0 },
} as const

/**
 * A handler that answers by method and path, such as
 * `'POST /api/dead-letters/dispatch/7/retry'` (the query string is left out
 * of the match), and 404 `not_found` for anything else.
 */
export function answerByRoute(
  table: Readonly<Record<string, FakeAnswer>>,
): FakeHandler {
  return (request) => {
    const path = request.url.split('?')[0] ?? ''
    return table[`${request.method} ${path}`] ?? notFound(request)
  }
}

/** The last request `server` received, with its body parsed as JSON. */
export function lastRequest(
  server: FakeServer,
): RecordedRequest & { json: unknown } {
  const request = server.requests.at(-1)
  if (request === undefined) throw new Error('the server got no request')
  const json: unknown =
    request.body === '' ? undefined : JSON.parse(request.body)
  return { ...request, json }
}

/** A loopback URL where nothing listens: a port that was just free. */
export async function deadServerUrl(): Promise<string> {
  const probe = createNetServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const { port } = probe.address() as AddressInfo
  await new Promise((resolve) => probe.close(resolve))
  return `http://127.0.0.1:${port}`
}

async function record(request: IncomingMessage): Promise<RecordedRequest> {
  const chunks: Buffer[] = []
  for await (const chunk of request) chunks.push(chunk as Buffer)
  return {
    method: request.method ?? '',
    url: request.url ?? '',
    headers: request.headers,
    body: Buffer.concat(chunks).toString('utf8'),
  }
}

function answer(response: ServerResponse, fake: FakeAnswer): void {
  const text =
    typeof fake.body === 'string' ? fake.body : JSON.stringify(fake.body)
  const type = typeof fake.body === 'string' ? 'text/html' : 'application/json'
  response.writeHead(fake.status, { 'content-type': type, ...fake.headers })
  response.end(text)
}

function listen(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
}

function close(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((error) => (error ? reject(error) : resolve()))
    server.closeAllConnections()
  })
}
