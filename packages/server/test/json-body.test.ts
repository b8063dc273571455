/**
 * The strict JSON body parser: the same values as JSON.parse for the JSON
 * it accepts, and a deliberate 400 for duplicate keys, prototype keys,
 * deep nesting and numbers past 2^53 - 1.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { silentLogger } from '@parley/core'
import { loadConfig, type RunningServer, startServer } from '@parley/server'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { HttpError } from '../src/http/http-error.js'
import {
  MAX_JSON_DEPTH,
  parseJsonText,
  RESERVED_KEYS,
} from '../src/http/json-body.js'
import { parseJson } from '../src/http/parse.js'

const SEED = 20_241_101

function refusal(text: string): string {
  try {
    parseJsonText(text)
  } catch (error) {
    if (error instanceof HttpError && error.code === 'invalid_json') {
      return error.message
    }
    throw error
  }
  throw new Error(`accepted ${JSON.stringify(text)}`)
}

function nested(depth: number, open: string, close: string): string {
  return `${open.repeat(depth)}1${close.repeat(depth)}`
}

function nestedObjects(depth: number): string {
  return `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`
}

// What the parser must refuse in a value JSON.stringify wrote (which has
// no duplicate keys): a reserved key, too deep a nesting or a large number.
function deliberateRefusal(value: unknown, depth = 0): boolean {
  if (typeof value === 'number') return Math.abs(value) > 2 ** 53 - 1
  if (value === null || typeof value !== 'object') return false
  if (depth + 1 > MAX_JSON_DEPTH) return true
  const entries = Array.isArray(value)
    ? value.map((item) => ['', item] as const)
    : Object.entries(value)
  return entries.some(
    ([key, item]) =>
      RESERVED_KEYS.has(key) || deliberateRefusal(item, depth + 1),
  )
}

// Every object is plain, with own enumerable writable data properties only.
function expectPlainData(value: unknown): void {
  if (value === null || typeof value !== 'object') return
  if (Array.isArray(value)) {
    value.forEach(expectPlainData)
    return
  }
  expect(Object.getPrototypeOf(value)).toBe(Object.prototype)
  for (const descriptor of Object.values(
    Object.getOwnPropertyDescriptors(value),
  )) {
    expect(descriptor).toMatchObject({ enumerable: true, writable: true })
    expectPlainData(descriptor.value)
  }
}

describe('parseJsonText accepts what JSON.parse accepts', () => {
  it('returns the same values as JSON.parse for generated JSON', () => {
    const indent = fc.constantFrom(undefined, 0, 2, '\t', ' \r\n')
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), indent, (value, space) => {
        const text = JSON.stringify(value, null, space)
        if (deliberateRefusal(value)) {
          expect(refusal(text)).toMatch(/refused|nests|magnitude/)
          return
        }
        const parsed = parseJsonText(text)
        expect(parsed).toStrictEqual(JSON.parse(text))
        expectPlainData(parsed)
      }),
      { seed: SEED, numRuns: 2000 },
    )
  })

  it('decodes every escape and unicode string as JSON.parse does', () => {
    const strings = fc.oneof(
      fc.string({ unit: 'binary' }),
      fc.string({ unit: 'grapheme' }),
      fc.string({
        unit: fc.integer({ min: 0, max: 0xffff }).map(String.fromCharCode),
      }),
    )
    fc.assert(
      fc.property(strings, (value) => {
        // Escape every other character the long way too.
        const text = JSON.stringify(value).replace(
          /[\u0080-\uffff]/g,
          (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
        )
        expect(parseJsonText(text)).toBe(JSON.parse(text))
        expect(parseJsonText(JSON.stringify({ [value]: value }))).toEqual(
          RESERVED_KEYS.has(value) ? expect.anything() : { [value]: value },
        )
      }),
      { seed: SEED, numRuns: 2000 },
    )
  })

  it('agrees with JSON.parse on arbitrary text, refusing only with invalid_json', () => {
    const tokens = fc.constantFrom(
      ...'{}[],:"\\ \n\t0123456789-+.eEtrufalsn'.split(''),
      '"a"',
      '"\\u00',
      'true',
      'null',
      '1e400',
      '\u0000',
      '\ud800',
    )
    const texts = fc.oneof(
      fc.string(),
      fc.array(tokens, { maxLength: 40 }).map((parts) => parts.join('')),
      fc.json(),
      fc.json().map((text) => text.slice(0, Math.max(0, text.length - 1))),
    )
    fc.assert(
      fc.property(texts, (text) => {
        let expected: { value: unknown } | undefined
        try {
          expected = { value: JSON.parse(text) }
        } catch {
          expected = undefined
        }
        let actual: { value: unknown } | undefined
        try {
          actual = { value: parseJsonText(text) }
        } catch (error) {
          expect(error).toBeInstanceOf(HttpError)
          expect((error as HttpError).code).toBe('invalid_json')
          if (expected) {
            expect((error as HttpError).message).toMatch(
              /twice|refused|nests|magnitude/,
            )
          }
        }
        if (actual) expect(actual).toStrictEqual(expected)
      }),
      { seed: SEED, numRuns: 5000 },
    )
  })

  it('keeps JavaScript number semantics inside the safe range', () => {
    expect(parseJsonText('9007199254740991')).toBe(Number.MAX_SAFE_INTEGER)
    expect(parseJsonText('-9007199254740991')).toBe(-Number.MAX_SAFE_INTEGER)
    expect(parseJsonText('0.1')).toBe(0.1)
    expect(parseJsonText('1.5e3')).toBe(1500)
    expect(parseJsonText('1E+2')).toBe(100)
    expect(parseJsonText('1e-400')).toBe(0)
    expect(Object.is(parseJsonText('-0'), -0)).toBe(true)
  })

  it('keeps NUL characters and lone surrogates for validation to judge', () => {
    expect(parseJsonText('"a\\u0000b"')).toBe('a\u0000b')
    expect(parseJsonText('"\\ud800"')).toBe('\ud800')
    expect(parseJsonText('"\\udc00x"')).toBe('\udc00x')
    expect(parseJsonText('"\\ud83d\\ude00"')).toBe('😀')
  })
})

describe('parseJsonText refuses deliberately', () => {
  it.each([
    ['{"a":1,"a":2}', '$.a'],
    ['{"a":1,"\\u0061":2}', '$.a'],
    ['{"x":{"to":"1","b":[{"k":1,"k":1}]}}', '$.x.b[0].k'],
    ['{"":1,"":2}', '$[""]'],
    ['{"a b":1,"a b":2}', '$["a b"]'],
  ])('refuses the duplicate key in %s, naming %s', (text, path) => {
    const message = refusal(text)
    expect(message).toContain(`${path} twice`)
  })

  it.each([
    '{"__proto__":{"polluted":true}}',
    '{"\\u005f_proto__":{}}',
    '{"a":[{"constructor":{"prototype":{}}}]}',
    '{"prototype":1}',
  ])('refuses the prototype key in %s and pollutes nothing', (text) => {
    expect(refusal(text)).toMatch(/__proto__|constructor|prototype/)
    expect(refusal(text)).toContain('refused')
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })

  it('accepts 32 levels of nesting and refuses 33', () => {
    expect(parseJsonText(nested(MAX_JSON_DEPTH, '[', ']'))).toBeInstanceOf(
      Array,
    )
    expect(parseJsonText(nestedObjects(MAX_JSON_DEPTH))).toBeInstanceOf(Object)
    expect(refusal(nested(MAX_JSON_DEPTH + 1, '[', ']'))).toContain(
      'deeper than 32 levels at $[0][0]',
    )
    expect(refusal(nestedObjects(MAX_JSON_DEPTH + 1))).toMatch(
      /deeper than 32 levels at \$(\.a){32}$/,
    )
  })

  it('refuses a million levels of nesting without exhausting the stack', () => {
    expect(refusal('['.repeat(1_000_000))).toContain('deeper than 32')
    expect(refusal('{"a":'.repeat(200_000))).toContain('deeper than 32')
  })

  it.each([
    '9007199254740992',
    '-9007199254740992',
    '9007199254740993',
    '12345678901234567890',
    '9007199254740993.0',
    '1e300',
    '-1.5e20',
    '1e400',
    '-1e400',
  ])('refuses the number %s, which a double cannot hold exactly', (number) => {
    const message = refusal(`{"id":[${number}]}`)
    expect(message).toContain(`${number} at $.id[0]`)
    expect(message).toContain('2^53 - 1')
  })

  it.each([
    ['a trailing comma', '{"a":1,}'],
    ['single quotes', "{'a':1}"],
    ['a leading zero', '01'],
    ['a bare fraction', '.5'],
    ['a dangling exponent', '1e'],
    ['NaN', 'NaN'],
    ['a comment', '{"a":1/*x*/}'],
    ['a raw tab in a string', '"a\tb"'],
    ['an invalid escape', '"\\x41"'],
    ['a short unicode escape', '"\\u12"'],
    ['an unclosed string', '{"a":"b'],
    ['an unclosed object', '{"a":1'],
    ['a missing colon', '{"a" 1}'],
    ['a non-string key', '{1:2}'],
    ['two values', '1 2'],
    ['a byte order mark inside', '[\uFEFF1]'],
    ['nothing at all', ''],
  ])('refuses %s as not JSON, with a position', (_, text) => {
    expect(refusal(text)).toMatch(/is not JSON: .* at position \d+$/)
  })
})

describe('parseJson (bytes)', () => {
  const bytes = (text: string) => new TextEncoder().encode(text)

  it('ignores one leading byte order mark, not two', () => {
    expect(parseJson(bytes('\uFEFF{"a":1}'))).toEqual({ a: 1 })
    expect(() => parseJson(bytes('\uFEFF\uFEFF{"a":1}'))).toThrow(HttpError)
  })

  it('refuses invalid UTF-8 and refused content alike with invalid_json', () => {
    for (const body of [
      Uint8Array.from([0x22, 0xff, 0x22]),
      bytes('{"a":1,"a":1}'),
      bytes('{"__proto__":1}'),
    ]) {
      expect(() => parseJson(body)).toThrow(
        expect.objectContaining({ code: 'invalid_json', status: 400 }),
      )
    }
  })

  it('parses a 1 MiB body of awkward shapes in linear time', () => {
    const unit = '"\\\\\\"\\u00e9",'
    const strings = `[${unit.repeat(Math.floor(2 ** 20 / unit.length))}0]`
    const members = Array.from({ length: 50_000 }, (_, i) => `"k${i}":${i}`)
    const keys = `{${members.join(',')}}`
    const started = performance.now()
    expect(parseJsonText(strings)).toHaveLength(
      Math.floor(2 ** 20 / unit.length) + 1,
    )
    expect(Object.keys(parseJsonText(keys) as object)).toHaveLength(50_000)
    expect(performance.now() - started).toBeLessThan(2000)
  })
})

describe('JSON bodies through the running server', () => {
  let dir = ''
  let server: RunningServer

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'parley-json-body-'))
    const config = loadConfig({
      PORT: '0',
      HOST: '127.0.0.1',
      DATABASE_URL: join(dir, 'parley.db'),
    })
    server = await startServer({ config, logger: silentLogger })
  })

  afterAll(async () => {
    await server.shutdown()
    await rm(dir, { recursive: true, force: true })
  })

  const webhook = {
    from: '+12025550123',
    to: '+18045551234',
    type: 'sms',
    body: 'hello',
    attachments: null,
    timestamp: '2024-11-01T14:00:00Z',
    messaging_provider_id: 'SM-1',
  }
  const text = JSON.stringify(webhook)

  async function postText(body: string | Uint8Array) {
    const response = await fetch(`${server.url}/api/webhooks/sms`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    })
    const answer = (await response.json()) as Record<string, unknown>
    return { status: response.status, body: answer }
  }

  it.each([
    ['a duplicate key', text.replace('{', '{"to":"+18045550000",'), 'twice'],
    ['a __proto__ key', text.replace('{', '{"__proto__":{"x":1},'), 'refused'],
    ['a constructor key', text.replace('{', '{"constructor":1,'), 'refused'],
    [
      'a provider id past 2^53',
      text.replace('"SM-1"', '12345678901234567890'),
      '2^53',
    ],
    [
      'nesting 33 levels deep',
      text.replace('{', `{"x":${'['.repeat(33)}${']'.repeat(33)},`),
      'deeper than 32',
    ],
  ])('refuses %s with 400 invalid_json', async (_, body, why) => {
    const answer = await postText(body)

    expect(answer.status).toBe(400)
    expect(answer.body.code).toBe('invalid_json')
    expect(answer.body.message).toContain(why)
  })

  // Runs after the refusals, which carried the same provider id: had one of
  // them been stored, this one would be a duplicate.
  it('takes a body that starts with a byte order mark, as the first of its id', async () => {
    const body = new TextEncoder().encode(`\uFEFF${text}`)

    const answer = await postText(body)

    expect(answer.status).toBe(202)
    expect(answer.body).toEqual({ status: 'accepted' })
  })

  it('leaves NUL characters to validation, which refuses them', async () => {
    const answer = await postText(text.replace('"hello"', '"a\\u0000b"'))

    expect(answer.status).toBe(400)
    expect(answer.body.code).toBe('validation_failed')
  })
})
