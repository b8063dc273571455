import type { IncomingMessage } from 'node:http'
import { describe, expect, it } from 'vitest'
import { HttpError } from '../src/http/http-error.js'
import {
  type BodyType,
  checkAcceptsJson,
  checkContentType,
} from '../src/http/negotiate.js'
import { chooseMetricsFormat } from '../src/http/metrics-format.js'
import { parseBody, parseForm, parseJson } from '../src/http/parse.js'

function requestWith(headers: Record<string, string>): IncomingMessage {
  return { headers } as unknown as IncomingMessage
}

function codeOf(work: () => unknown): string | undefined {
  try {
    work()
  } catch (error) {
    if (error instanceof HttpError) return error.code
    throw error
  }
  return undefined
}

describe('checkAcceptsJson', () => {
  it.each([
    undefined,
    '',
    '*/*',
    '*/*;q=0.1',
    'application/*',
    'application/*;q=0.5',
    'application/json',
    'Application/JSON',
    'application/json; charset=utf-8',
    'text/html, application/json;q=0.01',
    'text/html,*/*;q=0.8',
  ])('lets Accept: %j have JSON', (accept) => {
    const headers: Record<string, string> =
      accept === undefined ? {} : { accept }
    expect(codeOf(() => checkAcceptsJson(requestWith(headers)))).toBeUndefined()
  })

  it.each([
    'text/html',
    'text/*',
    'image/png, image/*',
    'application/xml',
    'application/json;q=0',
    'application/*;q=0, text/plain',
    '*/*;q=0',
    // The most specific range decides, whatever wildcards allow.
    'application/json;q=0, */*',
    'application/json;q=0, application/*;q=1',
  ])('answers Accept: %j with 406 not_acceptable', (accept) => {
    expect(codeOf(() => checkAcceptsJson(requestWith({ accept })))).toBe(
      'not_acceptable',
    )
  })
})

describe('malformed q-values', () => {
  it.each(['1.5', 'abc', '-1', '0.0001', '', '1.01'])(
    'ignores q=%j, so the range weighs 1, for JSON and for /metrics alike',
    (q) => {
      expect(
        codeOf(() =>
          checkAcceptsJson(requestWith({ accept: `application/json;q=${q}` })),
        ),
      ).toBeUndefined()
      const format = (accept: string) =>
        chooseMetricsFormat(new URLSearchParams(), accept)
      expect(format(`text/plain;q=${q}`)).toBe('prometheus')
      expect(format(`application/json;q=${q}`)).toBe('json')
      expect(format(`text/plain;q=${q}, application/json;q=0.5`)).toBe(
        'prometheus',
      )
    },
  )

  it('still honours a well-formed q=0', () => {
    expect(
      codeOf(() =>
        checkAcceptsJson(requestWith({ accept: 'application/json;q=0' })),
      ),
    ).toBe('not_acceptable')
  })
})

describe('the /metrics format parameter', () => {
  it.each(['PROMETHEUS', 'Prometheus', 'JSON'])(
    'reads ?format=%s without regard to case',
    (value) => {
      expect(
        chooseMetricsFormat(new URLSearchParams({ format: value }), undefined),
      ).toBe(value.toLowerCase())
    },
  )
})

describe('checkContentType', () => {
  const both: BodyType[] = ['json', 'form']

  it.each([
    ['application/json', ['json'], 'json'],
    ['application/json; charset=utf-8', ['json'], 'json'],
    ['APPLICATION/JSON; CHARSET=UTF-8', ['json'], 'json'],
    ['application/json;charset="utf-8"', ['json'], 'json'],
    ['application/json; charset=utf8', ['json'], 'json'],
    ['application/x-www-form-urlencoded', both, 'form'],
    ['application/x-www-form-urlencoded; charset=UTF-8', both, 'form'],
    ['application/json', both, 'json'],
  ] as const)('reads %j on a route taking %j as %s', (type, accepted, want) => {
    expect(
      checkContentType(requestWith({ 'content-type': type }), accepted),
    ).toBe(want)
  })

  it.each([
    ['', ['json']],
    ['text/plain', ['json']],
    ['text/json', ['json']],
    ['application/json; charset=latin1', ['json']],
    ['application/json; charset=utf-16', ['json']],
    ['application/x-www-form-urlencoded', ['json']],
    ['multipart/form-data; boundary=x', both],
    ['application/jsonx', ['json']],
    ['application/problem+json', ['json']],
  ] as const)('refuses %j on a route taking %j with 415', (type, accepted) => {
    const headers: Record<string, string> =
      type === '' ? {} : { 'content-type': type }
    expect(codeOf(() => checkContentType(requestWith(headers), accepted))).toBe(
      'unsupported_media_type',
    )
  })

  it.each([
    ['application/json; charset=utf-8; charset=latin1', ['json'], 'charset'],
    ['application/json; charset=utf-8; charset=utf-8', ['json'], 'charset'],
    ['application/json;charset=utf-8;CHARSET="UTF-8"', ['json'], 'charset'],
    ['application/json; charset=latin1; charset=utf-8', both, 'charset'],
    ['application/json; v=1; charset=utf-8; V=2', ['json'], 'v'],
    ['application/json; flag; flag', ['json'], 'flag'],
    [
      'application/x-www-form-urlencoded; charset=utf-8; charset=latin1',
      both,
      'charset',
    ],
    ['application/x-www-form-urlencoded;a=1;charset=utf-8;a=1', both, 'a'],
  ] as const)(
    'refuses %j on a route taking %j with 415 naming the repeated %s',
    (type, accepted, name) => {
      const request = requestWith({ 'content-type': type })
      const error = thrown(() => checkContentType(request, accepted))

      expect(error.code).toBe('unsupported_media_type')
      expect(error.message).toBe(
        `the Content-Type repeats its ${name} parameter; send each parameter once`,
      )
    },
  )

  it('does not echo a repeated parameter that is not a short token', () => {
    const name = `x${'\u00e9'.repeat(3)}`
    const request = requestWith({
      'content-type': `application/json; ${name}=1; ${name}=2`,
    })

    expect(thrown(() => checkContentType(request, ['json'])).message).toBe(
      'the Content-Type repeats a parameter; send each parameter once',
    )
  })

  it('takes empty parameters (stray semicolons) as no parameter', () => {
    const request = requestWith({
      'content-type': 'application/json;; charset=utf-8;',
    })

    expect(checkContentType(request, ['json'])).toBe('json')
  })
})

function thrown(work: () => unknown): HttpError {
  try {
    work()
  } catch (error) {
    if (error instanceof HttpError) return error
    throw error
  }
  throw new Error('nothing was thrown')
}

describe('body parsing', () => {
  const bytes = (text: string) => new TextEncoder().encode(text)

  it('parses JSON and ignores a leading byte order mark', () => {
    expect(parseJson(bytes('{"a":"é"}'))).toEqual({ a: 'é' })
    expect(parseJson(bytes('\uFEFF{"a":1}'))).toEqual({ a: 1 })
  })

  it.each([
    ['malformed JSON', bytes('{"a":')],
    ['an empty body', bytes('')],
    ['white space only', bytes(' \n\t')],
    ['invalid UTF-8', Uint8Array.from([0x7b, 0xc3, 0x28, 0x7d])],
    ['an overlong UTF-8 encoding', Uint8Array.from([0x22, 0xc0, 0xaf, 0x22])],
    [
      'a UTF-8 encoded surrogate',
      Uint8Array.from([0x22, 0xed, 0xa0, 0x80, 0x22]),
    ],
  ])('refuses %s as invalid_json', (_, body) => {
    expect(codeOf(() => parseJson(body))).toBe('invalid_json')
  })

  it('keeps the first value of a repeated form field and decodes UTF-8', () => {
    const form = parseForm(
      bytes('From=%2B1804&Body=caf%C3%A9+%F0%9F%98%80&From=x'),
    )
    expect(form.From).toBe('+1804')
    expect(form.Body).toBe('café 😀')
  })

  it.each([
    ['a percent-escape of a lone byte', bytes('Body=%FF')],
    ['a truncated multi-byte escape', bytes('Body=caf%C3')],
    ['an escaped lone surrogate', bytes('Body=%ED%A0%80')],
    ['a broken escape', bytes('Body=%Z1')],
    ['raw invalid bytes', Uint8Array.from([0x42, 0x3d, 0xff])],
  ])('refuses a form with %s instead of storing U+FFFD', (_, body) => {
    expect(codeOf(() => parseForm(body))).toBe('validation_failed')
  })

  it('gives a form no inherited keys', () => {
    const form = parseForm(bytes('a=1'))
    expect(Object.getPrototypeOf(form)).toBeNull()
    expect(form.constructor).toBeUndefined()
  })

  it('parses by the negotiated type', () => {
    expect(parseBody(bytes('{"x":1}'), 'json')).toEqual({ x: 1 })
    expect(parseBody(bytes('x=1'), 'form')).toEqual(
      Object.assign(Object.create(null), { x: '1' }),
    )
  })
})
