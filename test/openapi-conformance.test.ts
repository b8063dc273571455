/**
 * docs/openapi.yaml against the real server: the served /openapi.json is
 * the YAML, the document is valid OpenAPI 3.1, and every documented
 * response example is obtained by sending its `x-request` to a server
 * started with the settings it names, then checked for its status, its
 * headers and its body against the documented schemas. A documented
 * status without an example that reaches it fails, so the document cannot
 * promise what the code does not do.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { type IncomingHttpHeaders, request as httpRequest } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Validator } from '@seriousme/openapi-schema-validator'
import { silentLogger } from '@parley/core'
import { loadConfig, type RunningServer, startServer } from '@parley/server'
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js'
import { afterAll, describe, expect, it } from 'vitest'
import {
  type ConformanceCase,
  conformanceCases,
  escapePointer,
  type ExampleRequest,
  type ExampleStep,
  headOperations,
  operations,
  readOpenApiYaml,
  resolve,
} from './helpers/openapi.js'
import { ROUTES } from '../packages/server/src/http/routes.js'
import { loopbackUrl } from './helpers/http.js'
import { BULK_LIMITS } from './helpers/server-process.js'

const doc = readOpenApiYaml()
const cases = conformanceCases(doc)

const ajv = new Ajv2020({ strict: false, allErrors: true })
ajv.addSchema(doc, 'openapi.json', undefined, false)

const validators = new Map<string, ValidateFunction>()

function validatorAt(pointer: string): ValidateFunction {
  let validate = validators.get(pointer)
  if (!validate) {
    validate = ajv.compile({ $ref: `openapi.json#${pointer}` })
    validators.set(pointer, validate)
  }
  return validate
}

function expectValid(pointer: string, value: unknown, what: string): void {
  const validate = validatorAt(pointer)
  const valid = validate(value)
  expect(
    valid,
    `${what} breaks ${pointer}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(value)}`,
  ).toBe(true)
}

// ---- servers, one per distinct set of settings -------------------------

interface Profile {
  readonly server: RunningServer
  readonly dir: string
  /** A request held open during shutdown, so that the server waits. */
  held?: () => void
  stopping?: Promise<number>
}

const profiles = new Map<string, Promise<Profile>>()

function profileKey(request: ExampleRequest): string {
  const env = Object.entries(request.server ?? {}).sort()
  return JSON.stringify({ env, during: request.during ?? null })
}

function profileFor(request: ExampleRequest): Promise<Profile> {
  const key = profileKey(request)
  let profile = profiles.get(key)
  if (!profile) {
    profile = startProfile(request)
    profiles.set(key, profile)
  }
  return profile
}

async function startProfile(request: ExampleRequest): Promise<Profile> {
  const dir = await mkdtemp(join(tmpdir(), 'parley-openapi-'))
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    DATABASE_URL: join(dir, 'parley.db'),
    API_SHUTDOWN_GRACE_SECS: '10',
    ...BULK_LIMITS,
    ...request.server,
  })
  const server = await startServer({ config, logger: silentLogger })
  const profile: Profile = { server, dir }
  if (request.during === 'shutdown') await beginShutdown(profile)
  return profile
}

// Holds one request open (a body that never ends), then starts the
// shutdown: the server keeps listening and answers new requests 503 until
// the held request ends (afterAll lets it go).
async function beginShutdown(profile: Profile): Promise<void> {
  const url = loopbackUrl(profile.server.url, '/api/messages/sms')
  const held = httpRequest(url, {
    method: 'POST',
    agent: false,
    headers: { 'content-type': 'application/json', 'content-length': '100' },
  })
  held.on('error', () => undefined)
  held.write('{"from": ')
  await new Promise((resolve) => setTimeout(resolve, 50))
  profile.held = () => held.destroy()
  profile.stopping = profile.server.shutdown()
}

afterAll(async () => {
  await Promise.all(
    [...profiles.values()].map(async (pending) => {
      const profile = await pending
      profile.held?.()
      await (profile.stopping ?? profile.server.shutdown())
      await rm(profile.dir, { recursive: true, force: true })
    }),
  )
})

// ---- sending -----------------------------------------------------------

interface Answer {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly text: string
}

interface Outgoing {
  readonly method: string
  readonly path: string
  readonly headers: Record<string, string>
  readonly body?: Buffer
  /** Send half the body, then wait. */
  readonly stall?: boolean
  /** Wait for `100 Continue` before sending the body. */
  readonly expectContinue?: boolean
  /** Send all of the body but its last byte until this settles. */
  readonly holdLastByte?: Promise<void>
}

function send(base: string, out: Outgoing): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers = { ...out.headers }
    if (out.body) headers['content-length'] = String(out.body.length)
    if (out.expectContinue) headers.expect = '100-continue'
    const request = httpRequest(loopbackUrl(base, out.path), {
      method: out.method,
      agent: false,
      headers,
    })
    request.on('response', (response) => {
      let text = ''
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => (text += chunk))
      response.on('end', () => {
        resolve({
          status: response.statusCode ?? 0,
          headers: response.headers,
          text,
        })
        request.destroy()
      })
    })
    request.on('continue', () => request.end(out.body))
    request.on('error', reject)
    if (out.expectContinue) return
    if (out.stall && out.body) {
      request.write(out.body.subarray(0, Math.floor(out.body.length / 2)))
      return
    }
    if (out.holdLastByte && out.body) {
      const body = out.body
      request.write(body.subarray(0, -1))
      void out.holdLastByte.then(() => request.end(body.subarray(-1)))
      return
    }
    request.end(out.body)
  })
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = () => undefined as void
  const promise = new Promise<void>((done) => (resolve = done))
  return { promise, resolve }
}

// `{{N.field}}` is the field of the N-th `before` answer.
function fill(text: string, earlier: readonly unknown[]): string {
  return text.replace(
    /\{\{(\d+)\.(\w+)\}\}/g,
    (_, index: string, field: string) => {
      const body = earlier[Number(index)] as Record<string, unknown> | undefined
      const value = body?.[field]
      if (value === undefined) throw new Error(`no ${field} in answer ${index}`)
      return String(value)
    },
  )
}

// A path parameter the example does not name takes the parameter's own
// documented example.
function pathOf(
  testCase: ConformanceCase,
  request: ExampleRequest,
  earlier: readonly unknown[],
): string {
  const path = testCase.template.replace(/\{(\w+)\}/g, (_, name: string) => {
    const value = request.pathParams?.[name] ?? testCase.pathExamples[name]
    if (value === undefined) throw new Error(`x-request names no ${name}`)
    return encodeURIComponent(fill(value, earlier))
  })
  const query = new URLSearchParams(request.query ?? {}).toString()
  return query === '' ? path : `${path}?${query}`
}

function bodyOf(
  step: ExampleStep & { bodyBytes?: number },
  defaultType: string | undefined,
): { body?: Buffer; type?: string } {
  if (step.json !== undefined) {
    return {
      body: Buffer.from(JSON.stringify(step.json)),
      type: 'application/json',
    }
  }
  if (step.form !== undefined) {
    const text = new URLSearchParams(step.form).toString()
    return {
      body: Buffer.from(text),
      type: 'application/x-www-form-urlencoded',
    }
  }
  if (step.raw !== undefined)
    return { body: Buffer.from(step.raw), type: defaultType }
  if (step.bodyBytes !== undefined) {
    const filler = 'x'.repeat(step.bodyBytes - '{"body":""}'.length)
    return {
      body: Buffer.from(`{"body":"${filler}"}`),
      type: 'application/json',
    }
  }
  return {}
}

function outgoing(
  testCase: ConformanceCase,
  step: ExampleStep & ExampleRequest,
  path: string,
  method: string,
): Outgoing {
  const sendsBody = method !== 'GET' && method !== 'HEAD'
  // A stalled request needs a body to stall in: any JSON will do.
  const content = step.stall
    ? { json: { body: 'x'.repeat(64) }, ...step }
    : step
  const { body, type } = sendsBody ? bodyOf(content, testCase.bodyType) : {}
  const headers: Record<string, string> = {}
  if (type) headers['content-type'] = type
  for (const [name, value] of Object.entries(step.headers ?? {})) {
    headers[name.toLowerCase()] = value
  }
  return {
    method,
    path,
    headers,
    body,
    stall: step.stall,
    expectContinue: step.bodyBytes !== undefined,
  }
}

async function obtain(
  testCase: ConformanceCase,
  method = testCase.method,
): Promise<Answer> {
  const request = testCase.request
  const { server } = await profileFor(request)
  const earlier: unknown[] = []
  for (const step of request.before ?? []) {
    const path = step.path ?? pathOf(testCase, request, earlier)
    const answer = await send(
      server.url,
      outgoing(testCase, step, path, step.method ?? testCase.method),
    )
    expect(answer.status, `before step ${path}`).toBeLessThan(300)
    earlier.push(JSON.parse(answer.text))
  }
  const out = outgoing(
    testCase,
    request,
    pathOf(testCase, request, earlier),
    method,
  )
  return sendAsDocumented(server.url, out, request, Number(testCase.status))
}

async function sendAsDocumented(
  base: string,
  out: Outgoing,
  request: ExampleRequest,
  status: number,
): Promise<Answer> {
  if (request.concurrent) {
    // Every copy is sent but for its last byte; once all are in, the last
    // bytes go at once, so that the copies reach the server together.
    const release = deferred()
    const copies = Array.from({ length: request.concurrent }, () =>
      send(base, { ...out, holdLastByte: release.promise }),
    )
    await new Promise((done) => setTimeout(done, 100))
    release.resolve()
    const answers = await Promise.all(copies)
    const hit = answers.find((answer) => answer.status === status)
    expect(hit, `statuses ${answers.map((a) => a.status)}`).toBeDefined()
    return hit as Answer
  }
  if (request.until) {
    const deadline = Date.now() + 10_000
    for (;;) {
      const answer = await send(base, out)
      if (answer.status === status || Date.now() > deadline) return answer
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  let answer = await send(base, out)
  for (let index = 1; index < (request.repeat ?? 1); index += 1) {
    answer = await send(base, out)
  }
  return answer
}

// ---- checking ----------------------------------------------------------

function checkHeaders(answer: Answer, responsePointer: string, title: string) {
  const response = resolve(doc, responsePointer).value
  for (const name of Object.keys(response.headers ?? {})) {
    const header = resolve(
      doc,
      `${responsePointer}/headers/${escapePointer(name)}`,
    )
    const value = answer.headers[name.toLowerCase()]
    if (value === undefined) {
      expect(
        header.value.required,
        `${title}: header ${name} missing`,
      ).not.toBe(true)
      continue
    }
    const text = Array.isArray(value) ? value.join(', ') : value
    const typed = header.value.schema?.type === 'integer' && /^\d+$/.test(text)
    expectValid(
      `${header.pointer}/schema`,
      typed ? Number(text) : text,
      `${title}: header ${name}`,
    )
  }
}

function checkContentType(answer: Answer, mediaType: string, title: string) {
  const sent = String(answer.headers['content-type'])
  if (mediaType === 'application/json') {
    expect(sent, title).toBe('application/json; charset=utf-8')
  } else {
    expect(sent, title).toBe(mediaType)
  }
}

function checkBody(testCase: ConformanceCase, answer: Answer) {
  const schema = `${testCase.responsePointer}/content/${escapePointer(testCase.mediaType)}/schema`
  const body =
    testCase.mediaType === 'application/json'
      ? JSON.parse(answer.text)
      : answer.text
  expectValid(schema, body, `${testCase.title}: the answer`)
  const code = testCase.example.value?.code
  if (code !== undefined) expect(body.code, testCase.title).toBe(code)
}

// ---- the tests ---------------------------------------------------------

describe('the OpenAPI document', () => {
  it('is valid OpenAPI 3.1', async () => {
    const validator = new Validator()
    const result = await validator.validate(structuredClone(doc))
    expect(result.errors ?? []).toEqual([])
    expect(result.valid).toBe(true)
    expect(validator.version).toBe('3.1')
  })

  it('is what GET /openapi.json serves, byte for byte the YAML as JSON', async () => {
    const { server } = await profileFor({})
    const answer = await send(server.url, {
      method: 'GET',
      path: '/openapi.json',
      headers: {},
    })
    expect(answer.status).toBe(200)
    expect(
      JSON.parse(answer.text),
      'the server embeds an older docs/openapi.yaml: npm run build',
    ).toEqual(JSON.parse(JSON.stringify(doc)))
  })

  it('serves /openapi.json without an API key on a server that has keys', async () => {
    const { server } = await profileFor({
      server: { API_KEYS: 'parley-example-key-0123456789' },
    })
    const answer = await send(server.url, {
      method: 'GET',
      path: '/openapi.json',
      headers: {},
    })
    expect(answer.status).toBe(200)
  })

  it('documents every route the server has', () => {
    const documented = operations(doc).map(
      (op) => `${op.method} ${op.template}`,
    )
    const routed = ROUTES.map(
      (route) =>
        `${route.method} /${route.path
          .map((part) => (part.startsWith(':') ? `{${part.slice(1)}}` : part))
          .join('/')}`,
    )
    expect(documented.sort()).toEqual(routed.sort())
    const heads = headOperations(doc).map((op) => op.template)
    const gets = operations(doc)
      .filter((op) => op.method === 'GET')
      .map((op) => op.template)
    expect(heads.sort()).toEqual(gets.sort())
  })

  it('gives every documented status of every operation an example that says how to get it', () => {
    const missing = operations(doc).flatMap(({ method, template, operation }) =>
      Object.keys(operation.responses)
        .filter(
          (status) =>
            !cases.some(
              (c) =>
                c.method === method &&
                c.template === template &&
                c.status === status &&
                c.hasRequest,
            ),
        )
        .map((status) => `${method} ${template} ${status}`),
    )
    expect(missing).toEqual([])
    expect(cases.filter((c) => !c.hasRequest).map((c) => c.title)).toEqual([])
  })

  it('has examples that match their own schemas', () => {
    for (const testCase of cases) {
      const schema = `${testCase.responsePointer}/content/${escapePointer(testCase.mediaType)}/schema`
      expectValid(
        schema,
        testCase.example.value,
        `${testCase.title}: the example`,
      )
      const json = testCase.request.json
      if (testCase.status.startsWith('2') && json !== undefined) {
        const op = operations(doc).find(
          (o) =>
            o.method === testCase.method && o.template === testCase.template,
        )
        expectValid(
          `${op?.pointer}/requestBody/content/application~1json/schema`,
          json,
          `${testCase.title}: the request`,
        )
      }
    }
  })
})

describe('the server answers every documented example as documented', () => {
  it.each(cases.map((c) => [c.title, c] as const))(
    '%s',
    async (_, testCase) => {
      const answer = await obtain(testCase)

      expect(answer.status, `${testCase.title}: ${answer.text}`).toBe(
        Number(testCase.status),
      )
      checkContentType(answer, testCase.mediaType, testCase.title)
      checkHeaders(answer, testCase.responsePointer, testCase.title)
      checkBody(testCase, answer)
      const promised = testCase.example['x-response-headers'] ?? {}
      for (const [name, value] of Object.entries(promised)) {
        expect(answer.headers[name.toLowerCase()], name).toBe(value)
      }
    },
  )
})

describe('HEAD answers as documented, as GET without a body', () => {
  const headCases = headOperations(doc).flatMap(
    ({ template, statuses, pointer }) =>
      statuses.map((status) => {
        const get = cases.find(
          (c) =>
            c.method === 'GET' &&
            c.template === template &&
            c.status === status,
        )
        return [`HEAD ${template} ${status}`, { get, pointer, status }] as const
      }),
  )

  it.each(headCases)('%s', async (title, { get, pointer, status }) => {
    expect(get, `${title}: no GET example with this status`).toBeDefined()
    if (!get) return
    const answer = await obtain(get, 'HEAD')

    expect(answer.status, title).toBe(Number(status))
    expect(answer.text, title).toBe('')
    checkContentType(answer, get.mediaType, title)
    checkHeaders(
      answer,
      resolve(doc, `${pointer}/responses/${status}`).pointer,
      title,
    )
  })
})
