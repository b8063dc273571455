import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import {
  bearerChallenge,
  checkBearer,
  createApiKey,
  parseApiKeys,
} from '../src/http/security/api-keys.js'

const FIRST = 'first-key-0123456789'
const SECOND = 'second-key-abcdefghij'

function idOf(secret: string): string {
  return createHash('sha256').update(secret).digest('hex').slice(0, 8)
}

function messageOf(work: () => unknown): string {
  try {
    work()
  } catch (error) {
    if (error instanceof RangeError) return error.message
    throw error
  }
  throw new Error('expected a RangeError')
}

describe('parseApiKeys', () => {
  it('splits on commas, trims entries and ignores empty ones', () => {
    const keys = parseApiKeys(` ${FIRST} ,, ${SECOND},  ,`)
    expect(keys.map((key) => key.id)).toEqual([idOf(FIRST), idOf(SECOND)])
  })

  it('gives no keys for empty or separator-only text', () => {
    expect(parseApiKeys('')).toEqual([])
    expect(parseApiKeys(' , ,')).toEqual([])
  })

  it('keeps a repeated key once', () => {
    expect(parseApiKeys(`${FIRST},${FIRST}`)).toHaveLength(1)
  })

  it('uses the first 8 hex characters of the SHA-256 as the id', () => {
    const [key] = parseApiKeys(FIRST)
    expect(key?.id).toMatch(/^[0-9a-f]{8}$/)
    expect(key?.id).toBe(idOf(FIRST))
  })

  it('accepts exactly 16 characters of any visible ASCII', () => {
    expect(parseApiKeys('!"#$%&\'()*+-./~{')).toHaveLength(1)
  })

  it.each([
    ['a key of 15 characters', 'fifteen-chars!!', 'shorter than 16'],
    ['an inner space', 'key with a space inside', 'not visible ASCII'],
    ['a tab', 'key-with-a\ttab-inside', 'not visible ASCII'],
    ['a non-ASCII letter', 'schlüssel-0123456789', 'not visible ASCII'],
    ['a control character', 'key-with-nul\u0000-0123456', 'not visible ASCII'],
  ])('refuses %s, naming its position but not the key', (_, bad, problem) => {
    const message = messageOf(() => parseApiKeys(`${FIRST}, ${bad}`))
    expect(message).toContain('key number 2')
    expect(message).toContain(problem)
    expect(message).not.toContain(bad)
    expect(message).not.toContain(FIRST)
  })

  it('keeps only digests, so no key shows up in the parsed value', () => {
    const keys = parseApiKeys(`${FIRST},${SECOND}`)
    const dumped =
      JSON.stringify(keys) + String(keys) + JSON.stringify([...keys])
    expect(dumped).not.toContain(FIRST)
    expect(dumped).not.toContain(SECOND)
    expect(Object.isFrozen(keys)).toBe(true)
    expect(Object.isFrozen(keys[0])).toBe(true)
  })
})

describe('createApiKey', () => {
  it('builds the same key as parseApiKeys', () => {
    expect(createApiKey(FIRST)).toEqual(parseApiKeys(FIRST)[0])
  })

  it('refuses a short key without quoting it', () => {
    const message = messageOf(() => createApiKey('short-key'))
    expect(message).toContain('shorter than 16')
    expect(message).not.toContain('short-key')
  })
})

describe('checkBearer', () => {
  const keys = parseApiKeys(`${FIRST},${SECOND}`)

  it('accepts each configured key and names it by its id', () => {
    expect(checkBearer(`Bearer ${FIRST}`, keys)).toEqual({
      ok: true,
      keyId: idOf(FIRST),
    })
    expect(checkBearer(`Bearer ${SECOND}`, keys)).toEqual({
      ok: true,
      keyId: idOf(SECOND),
    })
  })

  it('takes the scheme in any case and tolerates extra spaces', () => {
    expect(checkBearer(`bearer ${FIRST}`, keys).ok).toBe(true)
    expect(checkBearer(`BEARER   ${FIRST}  `, keys).ok).toBe(true)
  })

  it.each([
    ['a wrong key', `Bearer wrong-key-0123456789`],
    ['a prefix of a key', `Bearer ${FIRST.slice(0, -1)}`],
    ['a key with a suffix', `Bearer ${FIRST}x`],
    ['a key in another case', `Bearer ${FIRST.toUpperCase()}`],
    ['a short token', 'Bearer abc'],
  ])('refuses %s as unknown_key', (_, header) => {
    const result = checkBearer(header, keys)
    expect(result).toMatchObject({ ok: false, reason: 'unknown_key' })
  })

  it.each([undefined, '', '   '])('refuses header %j as missing', (header) => {
    expect(checkBearer(header, keys)).toMatchObject({
      ok: false,
      reason: 'missing',
    })
  })

  it.each([
    `Basic ${Buffer.from(`user:${FIRST}`).toString('base64')}`,
    FIRST,
    `Token ${FIRST}`,
    `Bearer-${FIRST}`,
  ])('refuses header %j as not_bearer', (header) => {
    expect(checkBearer(header, keys)).toMatchObject({
      ok: false,
      reason: 'not_bearer',
    })
  })

  it.each([
    'Bearer',
    'Bearer    ',
    `Bearer ${FIRST} ${SECOND}`,
    `Bearer ${FIRST}\u0000`,
    'Bearer schlüssel-0123456789',
  ])('refuses header %j as malformed', (header) => {
    expect(checkBearer(header, keys)).toMatchObject({
      ok: false,
      reason: 'malformed',
    })
  })

  it('refuses every token when no key is configured', () => {
    expect(checkBearer(`Bearer ${FIRST}`, [])).toMatchObject({
      ok: false,
      reason: 'unknown_key',
    })
  })

  it('never puts the offered token into its message', () => {
    const token = 'guessed-key-0123456789'
    const result = checkBearer(`Bearer ${token}`, keys)
    expect(JSON.stringify(result)).not.toContain(token)
  })
})

describe('bearerChallenge', () => {
  it('asks for a token when none was offered', () => {
    expect(bearerChallenge()).toBe('Bearer realm="parley"')
    expect(bearerChallenge('missing')).toBe('Bearer realm="parley"')
    expect(bearerChallenge('not_bearer')).toBe('Bearer realm="parley"')
  })

  it('adds error="invalid_token" when a token was offered but is wrong', () => {
    const invalid = 'Bearer realm="parley", error="invalid_token"'
    expect(bearerChallenge('unknown_key')).toBe(invalid)
    expect(bearerChallenge('malformed')).toBe(invalid)
  })
})
