/**
 * Fuzzing the real server process (issue 4, "must show"): thousands of
 * generated requests (bodies, headers, paths and framing) over loopback,
 * with bounded concurrency and a fixed seed. Every answer must be below
 * 500, every error a well-formed JSON error body, the process must stay up,
 * and the stored data may change only by the requests that were accepted.
 * A second server requires API keys and webhook signatures: there, no
 * write passes without the key and no made-up signature passes at all.
 *
 * Reproduce a run with its seed: PARLEY_FUZZ_SEED=<seed> npx vitest run
 * test/fuzz.test.ts (the default seed is fixed).
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { connect } from 'node:net'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { get, post } from './helpers/http.js'
import {
  type ConversationItem,
  emailSend,
  emailWebhook,
  type MessageItem,
  mapLimit,
  type Metrics,
  readMetrics,
  smsSend,
  smsWebhook,
} from './helpers/parley.js'
import { pollUntil } from './helpers/poll.js'
import {
  cleanUpServers,
  type ServerProcess,
  startServerProcess,
} from './helpers/server-process.js'

const SEED = Number(process.env.PARLEY_FUZZ_SEED ?? 20_241_104)
/** Property runs; each sends one batch of requests. */
const BATCHES = 120
/** Property runs against the server with keys and signatures. */
const GUARDED_BATCHES = 50
const BATCH_SIZE = 64
/** Requests of a batch in flight at once. */
const CONCURRENCY = 16
/** Stops generating after this long (the run then reports fewer batches). */
const TIME_LIMIT_MS = 40_000
const MAX_BODY_BYTES = 65_536
const BODY_TIMEOUT_MS = 200
const RESPONSE_TIMEOUT_MS = 10_000

// ---------------------------------------------------------------- requests

/** How the body is framed on the wire. */
type Framing =
  | 'exact' // Content-Length matches
  | 'chunked' // Transfer-Encoding: chunked
  | 'short' // Content-Length below the bytes sent (the rest is garbage)
  | 'long' // Content-Length above the bytes sent (the server times out)

interface FuzzRequest {
  readonly method: string
  readonly target: string
  readonly headers: ReadonlyArray<readonly [string, string]>
  readonly body: Uint8Array
  readonly framing: Framing
  /** True when the body must be refused, whatever else the request says. */
  readonly mustRefuse: boolean
}

interface FuzzResponse {
  readonly status: number
  /** Header names in lower case; repeated ones joined with ', '. */
  readonly headers: Readonly<Record<string, string>>
  readonly text: string
}

const encoder = new TextEncoder()
const bytes = (text: string) => encoder.encode(text)

function describeRequest(request: FuzzRequest): string {
  const body = Buffer.from(request.body).toString('utf8')
  return JSON.stringify({
    ...request,
    body: body.length > 300 ? `${body.slice(0, 300)}...` : body,
    target:
      request.target.length > 300
        ? `${request.target.slice(0, 300)}...`
        : request.target,
  })
}

function wireBytes(request: FuzzRequest, port: number): Buffer {
  const lines = [
    `${request.method} ${request.target} HTTP/1.1`,
    `Host: 127.0.0.1:${port}`,
    'Connection: close',
    ...request.headers.map(([name, value]) => `${name}: ${value}`),
  ]
  const body = Buffer.from(request.body)
  switch (request.framing) {
    case 'exact':
      lines.push(`Content-Length: ${body.length}`)
      return Buffer.concat([head(lines), body])
    case 'short':
      lines.push(`Content-Length: ${Math.max(0, body.length - 7)}`)
      return Buffer.concat([head(lines), body])
    case 'long':
      lines.push(`Content-Length: ${body.length + 5}`)
      return Buffer.concat([head(lines), body])
    case 'chunked': {
      lines.push('Transfer-Encoding: chunked')
      const chunk =
        body.length === 0
          ? Buffer.alloc(0)
          : Buffer.concat([
              Buffer.from(`${body.length.toString(16)}\r\n`),
              body,
              Buffer.from('\r\n'),
            ])
      return Buffer.concat([head(lines), chunk, Buffer.from('0\r\n\r\n')])
    }
  }
}

function head(lines: readonly string[]): Buffer {
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1')
}

/**
 * Sends one request on a fresh loopback connection and reads the first
 * final (non-1xx) response on it.
 */
function exchange(port: number, request: FuzzRequest): Promise<FuzzResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let received = Buffer.alloc(0)
    let closed = false
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no response within ${RESPONSE_TIMEOUT_MS} ms`))
    }, RESPONSE_TIMEOUT_MS)
    const check = () => {
      const response = readResponse(received, request)
      if (!response && !closed) return
      clearTimeout(timer)
      socket.destroy()
      if (response) resolve(response)
      else
        reject(
          new Error(
            `closed without a response: ${received.toString('latin1', 0, 200)}`,
          ),
        )
    }
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk])
      check()
    })
    socket.on('close', () => {
      closed = true
      check()
    })
    // A reset after the answer is normal with garbage left unread.
    socket.on('error', () => undefined)
    socket.write(wireBytes(request, port))
  })
}

// The first final response in `data`, once complete.
function readResponse(
  data: Buffer,
  request: FuzzRequest,
): FuzzResponse | undefined {
  let rest = data
  for (;;) {
    const end = rest.indexOf('\r\n\r\n')
    if (end < 0) return undefined
    const [statusLine = '', ...lines] = rest
      .subarray(0, end)
      .toString('latin1')
      .split('\r\n')
    const status = Number(statusLine.split(' ')[1])
    rest = rest.subarray(end + 4)
    if (status >= 100 && status < 200) continue
    const headers: Record<string, string> = {}
    for (const line of lines) {
      const colon = line.indexOf(':')
      const name = line.slice(0, colon).trim().toLowerCase()
      const value = line.slice(colon + 1).trim()
      headers[name] = name in headers ? `${headers[name]}, ${value}` : value
    }
    const length =
      request.method === 'HEAD' ? 0 : Number(headers['content-length'] ?? NaN)
    if (Number.isFinite(length) && rest.length < length) return undefined
    const body = Number.isFinite(length) ? rest.subarray(0, length) : rest
    return { status, headers, text: body.toString('utf8') }
  }
}

// -------------------------------------------------------------- generators

const PHONES = [
  '+18045551234',
  '+12025550123',
  '(804) 555-1234',
  '804.555.1234',
  '12345',
  '+1',
  '+999999999999999999',
  'abc',
  '+1 804 555 1234 ext 5',
  'ParleyCo',
  '',
]
const EMAILS = [
  'ann@customer.example',
  'Ann <ann+tag@customer.example>',
  'support@parley.example',
  '+tag@customer.example',
  '@',
  'a@b',
  'ünï@çödé.example',
  '"quoted"@x.example',
  '<>',
]
const TIMESTAMPS = [
  '2024-11-01T14:00:00Z',
  '2024-11-01T14:00:00.123+05:30',
  '2024-11-01T14:00:00',
  '2024-02-30T00:00:00Z',
  '+275760-09-13T00:00:00.000Z',
  '9999-12-31T23:59:59.999Z',
  '1970-01-01T00:00:00Z',
  'now',
  '',
]
const NASTY_STRINGS = [
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\ud800',
  'x\udc00',
  '😀👩‍👩‍👧‍👦',
  'e\u0301\u0301\u0301',
  '\u202eevil',
  '\u200b\u2028\u2029',
  '<script>alert(1)</script>',
  "'; drop table messages; --",
  '%s%n%x',
  '../../etc/passwd',
  '\\u0000',
  'long'.repeat(3000),
]
const URLS = [
  'https://cdn.parley.example/a.png',
  'http://cdn.parley.example/b.gif',
  'javascript:alert(1)',
  'ftp://x.example/a',
  'http://',
  'not a url',
  `https://cdn.parley.example/${'x'.repeat(3000)}`,
]

const nastyValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(...NASTY_STRINGS),
  fc.constantFrom(...PHONES, ...EMAILS, ...TIMESTAMPS),
  fc.constantFrom(null, true, 0, -1, 1.5, [], {}),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.jsonValue({ maxDepth: 2 }),
)

const attachmentsValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant(null),
  fc.constant([]),
  fc.array(fc.constantFrom(...URLS), { minLength: 1, maxLength: 10 }),
  fc.constantFrom('https://cdn.parley.example/a.png', 1, [1], [null]),
)

const address: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(...PHONES, ...EMAILS),
  fc.stringMatching(/^\+?[0-9 ().-]{0,24}$/),
  fc.emailAddress(),
  fc.emailAddress().map((email) => `Name <${email}>`),
)

// Dates, times, fractions and zones in every combination, valid or not.
const ISO_LIKE = new RegExp(
  '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}' +
    '(:[0-9]{2}(\\.[0-9]{1,9})?)?(Z|[+-][0-9]{2}:?[0-9]{2})?$',
)

const timestamp: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(...TIMESTAMPS, 1_730_469_600_000, null),
  fc.date({ noInvalidDate: true }).map((date) => date.toISOString()),
  fc.stringMatching(ISO_LIKE),
)

const FIELD_VALUES: Record<string, fc.Arbitrary<unknown>> = {
  from: address,
  to: address,
  type: fc.constantFrom('sms', 'mms', 'email', 'SMS', 'fax', ''),
  body: fc.oneof(fc.constantFrom(...NASTY_STRINGS), fc.string()),
  subject: fc.oneof(fc.constant(null), fc.string(), nastyValue),
  attachments: attachmentsValue,
  timestamp,
  messaging_provider_id: fc.oneof(fc.string(), fc.constantFrom('', 42, null)),
  xillio_id: fc.oneof(fc.string(), fc.constantFrom('', 42, null)),
  // Status callbacks and email events.
  MessageSid: fc.oneof(fc.string(), nastyValue),
  MessageStatus: fc.oneof(
    fc.constantFrom('sent', 'delivered', 'undelivered', 'failed', 'read'),
    nastyValue,
  ),
  ErrorCode: nastyValue,
  event: fc.oneof(
    fc.constantFrom('delivered', 'bounce', 'dropped', 'open', 'deferred'),
    nastyValue,
  ),
  sg_message_id: fc.oneof(fc.string(), nastyValue),
}

type Mutation =
  | { readonly kind: 'delete'; readonly field: string }
  | { readonly kind: 'set'; readonly field: string; readonly value: unknown }
  | { readonly kind: 'nasty'; readonly field: string; readonly value: unknown }
  | { readonly kind: 'extra'; readonly name: string; readonly value: unknown }

const fieldName = fc.constantFrom(...Object.keys(FIELD_VALUES))

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fieldName.map((field) => ({ kind: 'delete' as const, field })),
  fieldName.chain((field) =>
    (FIELD_VALUES[field] as fc.Arbitrary<unknown>).map((value) => ({
      kind: 'set' as const,
      field,
      value,
    })),
  ),
  fc.record({
    kind: fc.constant('nasty' as const),
    field: fieldName,
    value: nastyValue,
  }),
  fc.record({
    kind: fc.constant('extra' as const),
    name: fc.string({ maxLength: 12 }),
    value: nastyValue,
  }),
)

/**
 * A change to the JSON text that an object cannot express; `refused` when
 * no answer may accept the result.
 */
interface TextTweak {
  readonly apply: (text: string) => string
  readonly refused: boolean
}

const refused = (apply: (text: string) => string): TextTweak => ({
  apply,
  refused: true,
})
const tolerated = (apply: (text: string) => string): TextTweak => ({
  apply,
  refused: false,
})
const PROVIDER_ID = /"(messaging_provider_id|xillio_id)":"[^"]*"/

const TEXT_TWEAKS: readonly TextTweak[] = [
  refused((text) => text.replace('{', '{"__proto__":{"admin":true},')),
  refused((text) => text.replace('{', '{"constructor":{"prototype":{}},')),
  refused((text) => text.replace('{', '{"a":{"a":{"a":{"b":1,"b":2}}},')),
  refused((text) =>
    text.replace('{', `{"d":${'['.repeat(40)}${']'.repeat(40)},`),
  ),
  refused((text) => text.replace('{', '{"n":1e400,')),
  // A duplicate key when the body has `to`.
  tolerated((text) => text.replace('{', '{"to":"+18045551234",')),
  tolerated((text) => text.replace(PROVIDER_ID, '"$1":12345678901234567890')),
  tolerated((text) => text.replace(PROVIDER_ID, '"$1":9007199254740991')),
  tolerated((text) =>
    text.replace('{', `{"d":${'['.repeat(31)}${']'.repeat(31)},`),
  ),
  tolerated((text) => text.replace('"body":"', '"body":"\\u0000')),
  tolerated((text) => text.replace('"body":"', '"body":"\\ud83d')),
  tolerated((text) => text.replace('"body":"', '"body":"\\ud83d\\ude00')),
  tolerated((text) => `\uFEFF${text}`),
  tolerated((text) => `\uFEFF\uFEFF${text}`),
  tolerated((text) => `${text},`),
  tolerated((text) => text.slice(0, Math.floor(text.length / 2))),
  tolerated((text) => text.replace(/,/, ',,')),
  tolerated((text) => text.replace(/:/, ' : ')),
  tolerated((text) => ` \n\t${text}\r\n`),
]

/** Valid bodies of each POST (and PUT) route, to mutate. */
const BASES: Record<string, () => unknown> = {
  '/api/messages/sms': () => smsSend(),
  '/api/messages/email': () => emailSend(),
  '/api/webhooks/sms': () => smsWebhook(),
  '/api/webhooks/email': () => emailWebhook(),
  '/api/webhooks/sms/status': () => ({
    MessageSid: 'SM-fuzz',
    MessageStatus: 'delivered',
  }),
  '/api/webhooks/email/events': () => [
    { event: 'delivered', sg_message_id: 'fuzz.filter0001', email: 'a@b.c' },
  ],
  // An empty change: answered 200, changes nothing.
  '/api/provider/mock/config': () => ({}),
}

const BODY_PATHS = Object.keys(BASES)

/** A generated body, and whether every answer to it must refuse it. */
interface GeneratedBody {
  readonly bytes: Uint8Array
  readonly mustRefuse: boolean
}

const plainBody = (body: Uint8Array): GeneratedBody => ({
  bytes: body,
  mustRefuse: false,
})

/** A valid body of the route at `path` with a few of its fields mutated. */
function nearValidBody(path: string): fc.Arbitrary<GeneratedBody> {
  return fc
    .record({
      variant: fc.constantFrom('plain', 'mms'),
      // Distinct bodies and provider ids, so that accepted ones are new.
      tag: fc.string({ minLength: 1, maxLength: 12 }),
      mutations: fc.array(mutation, { maxLength: 3 }),
      tweak: fc.option(fc.constantFrom(...TEXT_TWEAKS), { freq: 3 }),
    })
    .map(({ variant, tag, mutations, tweak }) => {
      const body = (BASES[path] as () => unknown)()
      const target = Array.isArray(body) ? body[0] : body
      personalize(target as Record<string, unknown>, variant, tag)
      for (const change of mutations) applyMutation(target, change)
      const text = JSON.stringify(body)
      return {
        bytes: bytes(tweak ? tweak.apply(text) : text),
        mustRefuse: tweak?.refused ?? false,
      }
    })
}

function personalize(
  body: Record<string, unknown>,
  variant: 'plain' | 'mms',
  tag: string,
): void {
  if (typeof body.body === 'string') body.body = `${body.body} ${tag}`
  if ('messaging_provider_id' in body) body.messaging_provider_id = `SM-${tag}`
  if ('xillio_id' in body) body.xillio_id = `x-${tag}`
  if (variant === 'mms' && body.type === 'sms') {
    body.type = 'mms'
    body.attachments = ['https://cdn.parley.example/a.png']
  }
}

function applyMutation(body: Record<string, unknown>, change: Mutation): void {
  switch (change.kind) {
    case 'delete':
      delete body[change.field]
      return
    case 'set':
    case 'nasty':
      body[change.field] = change.value
      return
    case 'extra':
      Object.defineProperty(body, change.name, {
        value: change.value,
        enumerable: true,
        writable: true,
        configurable: true,
      })
      return
  }
}

// Percent escapes sent as they are: broken, a surrogate, NUL.
const RAW_ESCAPES = ['%ZZ', '%ED%A0%80', '%00', '%']

const twilioForm: fc.Arbitrary<string> = fc
  .record(
    {
      From: fc.constantFrom(...PHONES),
      To: fc.constantFrom(...PHONES),
      Body: fc.oneof(fc.string(), fc.constantFrom(...RAW_ESCAPES)),
      MessageSid: fc.string({ maxLength: 20 }),
      NumMedia: fc.constantFrom('0', '1', '2', '-1', 'x', '99999999999'),
      MediaUrl0: fc.constantFrom(...URLS),
      MessageStatus: fc.constantFrom('delivered', 'failed', 'read', '??'),
    },
    { requiredKeys: [] },
  )
  .map((fields) =>
    Object.entries(fields)
      .map(([name, value]) => `${name}=${formValue(value)}`)
      .join('&'),
  )

function formValue(value: string): string {
  return RAW_ESCAPES.includes(value) ? value : encodeURIComponent(value)
}

const deepNesting: fc.Arbitrary<GeneratedBody> = fc
  .record({ depth: fc.integer({ min: 1, max: 300 }), object: fc.boolean() })
  .map(({ depth, object }) => ({
    bytes: bytes(
      object
        ? `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`
        : `${'['.repeat(depth)}${']'.repeat(depth)}`,
    ),
    mustRefuse: depth > 32,
  }))

/** Bodies that are not built from a valid one. */
const otherBody: fc.Arbitrary<GeneratedBody> = fc.oneof(
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 4 }).map(jsonBody) },
  { weight: 1, arbitrary: fc.json({ maxDepth: 3 }).map(bytes).map(plainBody) },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 300 }).map(plainBody) },
  { weight: 1, arbitrary: deepNesting },
  { weight: 1, arbitrary: twilioForm.map(bytes).map(plainBody) },
  {
    weight: 1,
    arbitrary: fc
      .string({ unit: 'binary', maxLength: 200 })
      .map(bytes)
      .map(plainBody),
  },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom('', ' ', 'null', '[]', '{}', '"x"', '1e309')
      .map((text) => ({ bytes: bytes(text), mustRefuse: text === '1e309' })),
  },
  {
    weight: 1,
    arbitrary: fc
      .integer({ min: MAX_BODY_BYTES - 20, max: MAX_BODY_BYTES + 20 })
      .map((size) => jsonBody({ body: 'x'.repeat(size) })),
  },
)

function jsonBody(value: unknown): GeneratedBody {
  return plainBody(bytes(JSON.stringify(value)))
}

/** A body for the route at `path`: mostly near-valid, sometimes anything. */
function bodyFor(path: string): fc.Arbitrary<GeneratedBody> {
  return fc.oneof(
    { weight: 12, arbitrary: nearValidBody(path) },
    { weight: 11, arbitrary: otherBody },
  )
}

const anyNearValidBody = fc
  .constantFrom(...BODY_PATHS)
  .chain((path) => nearValidBody(path))

const ROUTE_PATHS = [
  '/api/messages/sms',
  '/api/messages/email',
  '/api/webhooks/sms',
  '/api/webhooks/email',
  '/api/webhooks/sms/status',
  '/api/webhooks/email/events',
  '/api/conversations',
  '/api/conversations/{id}/messages',
  '/api/messages/{id}',
  '/metrics',
  '/healthz',
  '/readyz',
  '/api/provider/mock/config',
  '/api/dead-letters',
  '/api/dead-letters/{queue}/{id}/retry',
  '/openapi.json',
]
const IDS = [
  '1',
  '2',
  '3',
  '999',
  '0',
  '-1',
  'abc',
  '1.5',
  '%00',
  '%2e%2e',
  '..',
  '%ZZ',
  '1%2F2',
  '99999999999999999999999',
  '%ED%A0%80',
]
const QUEUES = ['dispatch', 'inbound', 'x', '', '%2F']
const SEGMENTS = [
  'api',
  'messages',
  'sms',
  'email',
  'webhooks',
  'conversations',
  'status',
  'events',
  'metrics',
  '..',
  '.',
  '',
  '%2e%2e',
  '%2F',
  '%00',
  '%ZZ',
  '%C3%A9',
  'API',
  '1',
]
const QUERY = fc.constantFrom(
  '',
  '?page=1&pageSize=200',
  '?page=0',
  '?page=-1',
  '?page=abc',
  '?pageSize=1e3',
  '?pageSize=999999999999',
  '?page=99999999999999999999',
  '?page=2.5',
  '?format=prometheus',
  '?queue=dispatch',
  '?queue=inbound',
  '?queue=nope',
  '?page=1&page=2',
  '?%ZZ=1',
  '?a=%00',
)

const PATH_CHARS = fc.constantFrom(..."abcXYZ019-._~!$&'()*+,;=:@/%?".split(''))

const knownPath: fc.Arbitrary<string> = fc
  .record({
    template: fc.constantFrom(...ROUTE_PATHS),
    id: fc.constantFrom(...IDS),
    queue: fc.constantFrom(...QUEUES),
  })
  .map(({ template, id, queue }) =>
    template.replace('{id}', id).replace('{queue}', queue),
  )

const PATH_TWEAKS: ReadonlyArray<(path: string) => string> = [
  (path) => `${path}/`,
  (path) => `/${path}`,
  (path) => path.replace('/', '//'),
  (path) => path.replace(/\/([^/]*)$/, '/./$1'),
  (path) => path.replace(/\/([^/]*)$/, '/x/../$1'),
  (path) => path.toUpperCase(),
  (path) => path.replace('s', '%73'),
  (path) => `${path}%`,
  (path) => `${path}#frag`,
  (path) => `http://127.0.0.1${path}`,
  (path) => `${path}/${'a'.repeat(5000)}`,
]

function tweakedPath(path: string): fc.Arbitrary<string> {
  return fc
    .nat(PATH_TWEAKS.length - 1)
    .map((tweak) => (PATH_TWEAKS[tweak] as (p: string) => string)(path))
}

const target: fc.Arbitrary<string> = fc.oneof(
  { weight: 10, arbitrary: fc.tuple(knownPath, QUERY).map(([p, q]) => p + q) },
  {
    weight: 3,
    arbitrary: knownPath.chain(tweakedPath),
  },
  {
    weight: 2,
    arbitrary: fc
      .array(fc.constantFrom(...SEGMENTS), { maxLength: 6 })
      .map((parts) => `/${parts.join('/')}`),
  },
  {
    weight: 1,
    arbitrary: fc
      .array(PATH_CHARS, { maxLength: 60 })
      .map((chars) => `/${chars.join('')}`),
  },
  { weight: 1, arbitrary: fc.constantFrom('*', '/', '//', '/..', '/%') },
)

const visibleAscii = (maxLength: number) =>
  fc
    .array(fc.integer({ min: 0x21, max: 0x7e }), { minLength: 1, maxLength })
    .map((codes) => String.fromCharCode(...codes))

const headerText = (maxLength: number) =>
  fc
    .array(fc.integer({ min: 0x20, max: 0x7e }), { maxLength })
    .map((codes) => String.fromCharCode(...codes).trim() || 'x')

const contentType = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.constantFrom(
      'application/json',
      'application/json; charset=utf-8',
      'APPLICATION/JSON;CHARSET="UTF-8"',
    ),
  },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'application/x-www-form-urlencoded',
      'application/json; charset=latin1',
      'text/plain',
      'multipart/form-data; boundary=x',
      'application/json, text/plain',
      'application/json;;;',
      'application/json; charset=',
      ';',
    ),
  },
  { weight: 1, arbitrary: headerText(60) },
)

const accept = fc.constantFrom(
  '*/*',
  'application/json',
  'text/html',
  'application/json;q=0',
  'application/json;q=0, */*',
  'text/plain',
  'text/plain;q=1, application/json;q=0.5',
  'application/*;q=abc',
  ',,,;',
)

type Header = readonly [string, string]

/** The header in `percent` out of 100 requests, else nothing. */
function sometimes(
  percent: number,
  name: string,
  value: fc.Arbitrary<string>,
): fc.Arbitrary<Header | null> {
  return fc.oneof(
    { weight: percent, arbitrary: value.map((v): Header => [name, v]) },
    { weight: 100 - percent, arbitrary: fc.constant(null) },
  )
}

/** Every header but the first `Content-Type`. */
const headers: fc.Arbitrary<Header[]> = fc
  .tuple(
    sometimes(15, 'Accept', fc.oneof(accept, headerText(40))),
    sometimes(30, 'X-Request-Id', fc.oneof(visibleAscii(140), headerText(40))),
    sometimes(
      15,
      'Idempotency-Key',
      fc.oneof(fc.constantFrom('k1', 'k2', 'k3'), visibleAscii(300)),
    ),
    // A second Content-Type: Node keeps the first.
    sometimes(5, 'Content-Type', contentType),
    sometimes(
      10,
      'X-Forwarded-For',
      fc.constantFrom('10.0.0.1', '::1, 1.2.3.4', 'garbage'),
    ),
    sometimes(5, 'Authorization', fc.constantFrom('Bearer x', 'Basic abc')),
    sometimes(10, 'Expect', fc.constant('100-continue')),
  )
  .map((list) => list.filter((item): item is Header => item !== null))

/** `Content-Type` then the other headers. */
function headersWith(
  type: fc.Arbitrary<Header | null>,
): fc.Arbitrary<Header[]> {
  return fc
    .tuple(type, headers)
    .map(([first, rest]) => (first ? [first, ...rest] : rest))
}

const framing = fc.oneof(
  { weight: 88, arbitrary: fc.constant<Framing>('exact') },
  { weight: 8, arbitrary: fc.constant<Framing>('chunked') },
  { weight: 3, arbitrary: fc.constant<Framing>('short') },
  { weight: 1, arbitrary: fc.constant<Framing>('long') },
)

const JSON_TYPE: Header = ['Content-Type', 'application/json']

/** A POST (or PUT) to a route that takes a body: the parser's side. */
const bodyRequest: fc.Arbitrary<FuzzRequest> = fc
  .constantFrom(...BODY_PATHS)
  .chain((path) =>
    fc.record({
      method: fc.constant(path.includes('mock') ? 'PUT' : 'POST'),
      target: fc.oneof(
        { weight: 8, arbitrary: fc.constant(path) },
        { weight: 1, arbitrary: tweakedPath(path) },
      ),
      headers: headersWith(
        fc.oneof(
          { weight: 6, arbitrary: fc.constant(JSON_TYPE) },
          { weight: 2, arbitrary: sometimes(90, 'Content-Type', contentType) },
        ),
      ),
      body: bodyFor(path),
      framing,
    }),
  )
  .map(toRequest)

const NO_BODY: GeneratedBody = plainBody(new Uint8Array(0))

function toRequest(parts: {
  method: string
  target: string
  headers: Header[]
  body: GeneratedBody
  framing: Framing
}): FuzzRequest {
  return { ...parts, body: parts.body.bytes, mustRefuse: parts.body.mustRefuse }
}

const method = fc.oneof(
  { weight: 4, arbitrary: fc.constant('POST') },
  { weight: 6, arbitrary: fc.constant('GET') },
  { weight: 2, arbitrary: fc.constantFrom('HEAD', 'PUT') },
  { weight: 1, arbitrary: fc.constantFrom('DELETE', 'PATCH', 'OPTIONS') },
)

/** Any method on any path: the router's side. */
const anyRequest: fc.Arbitrary<FuzzRequest> = fc
  .record({
    method,
    target,
    headers: headersWith(sometimes(85, 'Content-Type', contentType)),
    body: anyNearValidBody,
    framing,
  })
  .map((request) =>
    request.method === 'GET' || request.method === 'HEAD'
      ? toRequest({ ...request, body: NO_BODY, framing: 'exact' })
      : toRequest(request),
  )

const fuzzRequest: fc.Arbitrary<FuzzRequest> = fc.oneof(
  { weight: 3, arbitrary: bodyRequest },
  { weight: 1, arbitrary: anyRequest },
)

// ------------------------------------------------------- checks and ledger

/** One fuzzed server and what its accepted requests may have changed. */
interface FuzzRun {
  readonly server: ServerProcess
  /** Headers that authorize API requests (none when keys are off). */
  readonly auth: Readonly<Record<string, string>>
  /** True when webhooks need signatures: none of ours is valid. */
  readonly signedWebhooks: boolean
  requests: number
  /** Message ids of accepted sends (a replay repeats one). */
  readonly sentIds: Set<string>
  /** Accepted webhooks that were neither duplicates nor replays. */
  webhooks: number
  /** Requests answered by Node's HTTP parser, not the app ('short' framing). */
  framingRejected: number
  readonly statuses: Map<number, number>
}

function newRun(
  server: ServerProcess,
  auth: Readonly<Record<string, string>> = {},
): FuzzRun {
  return {
    server,
    auth,
    signedWebhooks: Object.keys(auth).length > 0,
    requests: 0,
    sentIds: new Set(),
    webhooks: 0,
    framingRejected: 0,
    statuses: new Map(),
  }
}

const VISIBLE_ID = /^[\x21-\x7e]{1,128}$/

function checkResponse(
  run: FuzzRun,
  request: FuzzRequest,
  response: FuzzResponse,
): void {
  const answer = `${response.status} ${response.text.slice(0, 500)}`
  const context = `${describeRequest(request)}\n-> ${answer}`
  run.statuses.set(
    response.status,
    (run.statuses.get(response.status) ?? 0) + 1,
  )
  expect(response.status, context).toBeLessThan(500)
  if (isNodeFramingAnswer(request, response)) {
    run.framingRejected += 1
    return
  }
  checkRequestId(request, response, context)
  if (request.mustRefuse) expect(response.status, context).toBeGreaterThan(399)
  if (run.signedWebhooks) checkGuarded(run, request, response, context)
  if (response.status >= 400) checkErrorBody(request, response, context)
  if (response.status === 202) recordAccepted(run, request, response, context)
}

function checkRequestId(
  request: FuzzRequest,
  response: FuzzResponse,
  context: string,
): void {
  const requestId = response.headers['x-request-id']
  expect(requestId, context).toMatch(VISIBLE_ID)
  const sentId = request.headers.find(([name]) => name === 'X-Request-Id')?.[1]
  if (sentId !== undefined && VISIBLE_ID.test(sentId)) {
    expect(requestId, context).toBe(sentId)
  }
}

// With keys and webhook secrets: a write needs the key, and no webhook or
// callback passes with the made-up signatures, so a write is a send.
function checkGuarded(
  run: FuzzRun,
  request: FuzzRequest,
  response: FuzzResponse,
  context: string,
): void {
  const isWrite = request.method === 'POST' || request.method === 'PUT'
  if (!isWrite || response.status >= 300) return
  const key = run.auth.Authorization
  expect(request.headers, context).toContainEqual(['Authorization', key])
  if (request.method === 'POST') expect(response.text, context).toMatch(/"id"/)
}

// Node itself answers a body longer than its Content-Length (the rest is a
// malformed second request) with a bare 400; that is below the app.
function isNodeFramingAnswer(
  request: FuzzRequest,
  response: FuzzResponse,
): boolean {
  return (
    request.framing === 'short' &&
    response.status === 400 &&
    response.headers['x-request-id'] === undefined
  )
}

function checkErrorBody(
  request: FuzzRequest,
  response: FuzzResponse,
  context: string,
): void {
  expect(response.headers['content-type'], context).toMatch(
    /^application\/json/,
  )
  if (request.method === 'HEAD') return
  const body = JSON.parse(response.text) as Record<string, unknown>
  const keys = Object.keys(body).sort()
  const expected =
    body.code === 'validation_failed'
      ? ['code', 'details', 'message', 'request_id']
      : ['code', 'message', 'request_id']
  expect(keys, context).toEqual(expected)
  expect(typeof body.code, context).toBe('string')
  expect(typeof body.message, context).toBe('string')
  expect(body.message, context).not.toBe('')
  expect(body.request_id, context).toBe(response.headers['x-request-id'])
}

function recordAccepted(
  run: FuzzRun,
  request: FuzzRequest,
  response: FuzzResponse,
  context: string,
): void {
  expect(request.method, context).toBe('POST')
  const body = JSON.parse(response.text) as Record<string, unknown>
  if (typeof body.id === 'string') {
    run.sentIds.add(body.id)
    return
  }
  expect(body.status, context).toBe('accepted')
  const replayed = response.headers['idempotent-replayed'] === 'true'
  if (body.duplicate !== true && !replayed) run.webhooks += 1
}

async function sendBatch(
  run: FuzzRun,
  batch: readonly FuzzRequest[],
): Promise<void> {
  await mapLimit(batch, CONCURRENCY, async (request) => {
    run.requests += 1
    let response: FuzzResponse
    try {
      response = await exchange(run.server.port, request)
    } catch (error) {
      const problem = error instanceof Error ? error.message : String(error)
      throw new Error(`${problem} for ${describeRequest(request)}`)
    }
    checkResponse(run, request, response)
  })
}

/** Sends `batches` batches of generated requests; throws the first failure. */
async function fuzz(
  run: FuzzRun,
  requests: fc.Arbitrary<FuzzRequest>,
  batches: number,
): Promise<void> {
  const started = performance.now()
  const details = await fc.check(
    fc.asyncProperty(
      fc.array(requests, { minLength: BATCH_SIZE, maxLength: BATCH_SIZE }),
      (batch) => sendBatch(run, batch),
    ),
    {
      seed: SEED,
      numRuns: batches,
      interruptAfterTimeLimit: TIME_LIMIT_MS,
      markInterruptAsFailure: false,
      // Shrinking would replay requests against a server whose data has
      // moved on; the failing request is named in the error instead.
      endOnFailure: true,
    },
  )
  report(run, details.numRuns, performance.now() - started)
  if (!details.failed) return
  const cause = details.errorInstance
  const problem = cause instanceof Error ? cause.message : String(cause)
  throw new Error(
    `fuzz failed (seed ${SEED}, run ${details.numRuns}): ${problem}`,
  )
}

function report(run: FuzzRun, batches: number, elapsedMs: number): void {
  const statuses = [...run.statuses].sort(([a], [b]) => a - b)
  console.info(
    `fuzz${run.signedWebhooks ? ' (keys and signatures)' : ''}: ` +
      `seed ${SEED}, ${batches} batches of ${BATCH_SIZE}, ` +
      `${run.requests} requests in ${Math.round(elapsedMs)} ms; accepted ` +
      `${run.sentIds.size} sends and ${run.webhooks} webhooks; ` +
      `${run.framingRejected} refused by Node's parser; statuses ` +
      JSON.stringify(Object.fromEntries(statuses)),
  )
}

// ------------------------------------------------------------ stored data

interface Snapshot {
  readonly conversations: ConversationItem[]
  readonly messages: Map<string, MessageItem[]>
  readonly metrics: Metrics
  readonly mockConfig: unknown
}

async function snapshot(run: FuzzRun): Promise<Snapshot> {
  const base = run.server.url
  const conversations = await allPages<ConversationItem>(
    run,
    '/api/conversations',
  )
  const messages = new Map<string, MessageItem[]>()
  for (const conversation of conversations) {
    const path = `/api/conversations/${conversation.id}/messages`
    messages.set(conversation.id, await allPages<MessageItem>(run, path))
  }
  const metrics = await readMetrics(base)
  const mockConfig = (await get(base, '/api/provider/mock/config', run.auth))
    .body
  return { conversations, messages, metrics, mockConfig }
}

async function allPages<T>(run: FuzzRun, path: string): Promise<T[]> {
  const items: T[] = []
  for (let page = 1; ; page += 1) {
    const url = `${path}?page=${page}&pageSize=200`
    const response = await get(run.server.url, url, run.auth)
    expect(response.status, response.text).toBe(200)
    items.push(...(response.body.items as T[]))
    const done = items.length >= response.body.meta.total
    if (done || response.body.items.length === 0) return items
  }
}

function messageTotal(data: Snapshot): number {
  return [...data.messages.values()].reduce((sum, list) => sum + list.length, 0)
}

function delta(
  before: Snapshot,
  after: Snapshot,
  field: keyof Metrics,
): number {
  return after.metrics[field] - before.metrics[field]
}

// Waits for the workers to dispatch every accepted send and thread every
// accepted webhook.
async function settled(run: FuzzRun, before?: Snapshot): Promise<Snapshot> {
  const { value } = await pollUntil(
    async () => {
      const metrics = await readMetrics(run.server.url)
      if (before) {
        const sent =
          metrics.dispatch_attempts - before.metrics.dispatch_attempts
        const threaded =
          metrics.worker_processed - before.metrics.worker_processed
        if (sent < run.sentIds.size || threaded < run.webhooks) return false
      }
      const data = await snapshot(run)
      const busy = [...data.messages.values()]
        .flat()
        .some((m) => m.status === 'queued' || m.status === 'sending')
      return !busy && data
    },
    {
      timeoutMs: 20_000,
      intervalMs: 100,
      description: 'accepted work settled',
    },
  )
  return value
}

async function seed(run: FuzzRun): Promise<void> {
  const base = run.server.url
  const sends = await Promise.all([
    post(base, '/api/messages/sms', smsSend({ body: 'seed one' }), run.auth),
    post(base, '/api/messages/sms', smsSend({ to: '+12025550199' }), run.auth),
    post(base, '/api/messages/email', emailSend(), run.auth),
  ])
  for (const answer of sends) expect(answer.status, answer.text).toBe(202)
  if (!run.signedWebhooks) {
    const hooks = await Promise.all([
      post(
        base,
        '/api/webhooks/sms',
        smsWebhook({ messaging_provider_id: 'SM-seed' }),
      ),
      post(base, '/api/webhooks/email', emailWebhook({ xillio_id: 'x-seed' })),
    ])
    for (const answer of hooks) expect(answer.status, answer.text).toBe(202)
  }
  const hooks = run.signedWebhooks ? 0 : 2
  await pollUntil(
    async () => {
      const metrics = await readMetrics(base)
      return (
        metrics.dispatch_success === 3 && metrics.worker_processed === hooks
      )
    },
    { description: 'seeded messages settled' },
  )
}

/** Fuzzes `run`'s server, then checks it is up and its data as expected. */
async function fuzzAndCheck(
  run: FuzzRun,
  requests: fc.Arbitrary<FuzzRequest>,
  batches: number,
): Promise<void> {
  await seed(run)
  const before = await settled(run)

  await fuzz(run, requests, batches)

  expect(run.requests).toBeGreaterThanOrEqual(1_000)
  const { server } = run
  expect(server.hasExited, server.describeOutput()).toBe(false)
  expect((await get(server.url, '/healthz')).status).toBe(200)
  const internalErrors = server
    .logLines()
    .filter((line) => line.event === 'http.internal_error')
  expect(internalErrors).toEqual([])
  checkStoredData(run, before, await settled(run, before))
}

function checkStoredData(
  run: FuzzRun,
  before: Snapshot,
  after: Snapshot,
): void {
  const accepted = run.sentIds.size + run.webhooks
  expect(messageTotal(after), 'messages: before + accepted').toBe(
    messageTotal(before) + accepted,
  )
  expect(after.mockConfig, 'mock provider settings').toEqual(before.mockConfig)
  checkKeptData(before, after)
  const afterIds = new Set([...after.messages.values()].flat().map((m) => m.id))
  for (const id of run.sentIds) {
    expect(afterIds, `accepted message ${id}`).toContain(id)
  }
  checkCounters(run, before, after)
}

// Every conversation and message stored before is there, unchanged.
function checkKeptData(before: Snapshot, after: Snapshot): void {
  const afterById = new Map(after.conversations.map((c) => [c.id, c]))
  for (const conversation of before.conversations) {
    const now = afterById.get(conversation.id)
    expect(now, `conversation ${conversation.id}`).toMatchObject({
      key: conversation.key,
      channel: conversation.channel,
      participant_a: conversation.participant_a,
      participant_b: conversation.participant_b,
    })
    const messages = after.messages.get(conversation.id) ?? []
    for (const message of before.messages.get(conversation.id) ?? []) {
      expect(messages, `message ${message.id} unchanged`).toContainEqual(
        message,
      )
    }
  }
}

function checkCounters(run: FuzzRun, before: Snapshot, after: Snapshot): void {
  const accepted = run.sentIds.size + run.webhooks
  const threaded =
    delta(before, after, 'conversations_created') +
    delta(before, after, 'conversations_reused')
  expect(threaded, 'conversations created + reused').toBe(accepted)
  for (const field of ['dispatch_attempts', 'dispatch_success'] as const) {
    expect(delta(before, after, field), field).toBe(run.sentIds.size)
  }
  expect(delta(before, after, 'worker_processed'), 'worker_processed').toBe(
    run.webhooks,
  )
  for (const field of UNMOVED_COUNTERS) {
    expect(delta(before, after, field), field).toBe(0)
  }
}

/** Counters that no generated request may move. */
const UNMOVED_COUNTERS = [
  'conversations_failures',
  'rate_limited',
  'breaker_open',
  'breaker_transitions',
  'invalid_routing',
  'dispatch_error',
  'dispatch_rate_limited',
  'dispatch_dead_letter',
  'worker_error',
  'worker_dead_letter',
] as const

// ------------------------------------------------------------------ tests

const API_KEY = 'fuzz-key-0123456789abcdef'
const SERVER_ENV = {
  API_MAX_BODY_BYTES: String(MAX_BODY_BYTES),
  API_BODY_TIMEOUT_MS: String(BODY_TIMEOUT_MS),
}

const base64Text = fc
  .uint8Array({ maxLength: 80 })
  .map((data) => Buffer.from(data).toString('base64'))

const unixSecondsText = fc.oneof(
  fc
    .integer({ min: -600, max: 600 })
    .map((offset) => String(Math.floor(Date.now() / 1000) + offset)),
  fc.constantFrom('0', '-1', '1e10', 'abc', '99999999999999999999'),
)

/** Made-up credentials: a valid API key, signatures of every shape. */
const guardHeaders: fc.Arbitrary<Header[]> = fc
  .tuple(
    fc.oneof(
      { weight: 6, arbitrary: fc.constant(`Bearer ${API_KEY}`) },
      { weight: 1, arbitrary: fc.constantFrom('Bearer nope', 'bearer', '') },
      { weight: 1, arbitrary: headerText(80) },
    ),
    sometimes(50, 'X-Twilio-Signature', fc.oneof(base64Text, headerText(40))),
    sometimes(30, 'webhook-id', fc.oneof(fc.constant('msg_1'), headerText(30))),
    sometimes(30, 'webhook-timestamp', unixSecondsText),
    sometimes(
      30,
      'webhook-signature',
      fc.oneof(
        base64Text.map((text) => `v1,${text}`),
        headerText(80),
      ),
    ),
    sometimes(
      30,
      'X-Twilio-Email-Event-Webhook-Signature',
      fc.oneof(base64Text, headerText(40)),
    ),
    sometimes(30, 'X-Twilio-Email-Event-Webhook-Timestamp', unixSecondsText),
  )
  .map(([authorization, ...rest]) => [
    ['Authorization', authorization] as Header,
    ...rest.filter((item): item is Header => item !== null),
  ])

function withHeaders(
  requests: fc.Arbitrary<FuzzRequest>,
  extra: fc.Arbitrary<Header[]>,
): fc.Arbitrary<FuzzRequest> {
  return fc.tuple(requests, extra).map(([request, added]) => ({
    ...request,
    headers: [...request.headers, ...added],
  }))
}

let open: FuzzRun
let guarded: FuzzRun

beforeAll(async () => {
  const sendgrid = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
  const [plain, keyed] = await Promise.all([
    startServerProcess({ env: SERVER_ENV }),
    startServerProcess({
      env: {
        ...SERVER_ENV,
        API_KEYS: API_KEY,
        WEBHOOK_SMS_AUTH_TOKEN: 'fuzz-twilio-token',
        WEBHOOK_EMAIL_SECRET: `whsec_${randomBytes(24).toString('base64')}`,
        WEBHOOK_SENDGRID_PUBLIC_KEY: sendgrid.publicKey
          .export({ format: 'der', type: 'spki' })
          .toString('base64'),
      },
    }),
  ])
  open = newRun(plain)
  guarded = newRun(keyed, { Authorization: `Bearer ${API_KEY}` })
})

afterAll(cleanUpServers)

describe('fuzzing the server', () => {
  it('answers generated requests below 500, stays up and stores only what it accepted', async () => {
    await fuzzAndCheck(open, fuzzRequest, BATCHES)
  }, 90_000)

  it('does the same with API keys and webhook signatures required', async () => {
    await fuzzAndCheck(
      guarded,
      withHeaders(fuzzRequest, guardHeaders),
      GUARDED_BATCHES,
    )
  }, 90_000)
})
