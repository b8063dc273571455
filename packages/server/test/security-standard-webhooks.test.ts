import { createHmac } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import {
  signStandardWebhook,
  standardWebhookKey,
  verifyStandardWebhook,
  type VerifyStandardWebhookOptions,
} from '../src/http/security/standard-webhooks.js'

// The example of the Standard Webhooks specification and its reference
// libraries (also Svix's documentation).
const SPEC = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
}

const SECRET =
  'whsec_' + Buffer.from('a-24-byte-secret-for-tst').toString('base64')
const NOW_S = 1_700_000_000
const BODY = Buffer.from('{"from":"a@example.com","to":"b@example.com"}')

// A second, straightforward implementation of the signing rule.
function independentSignature(
  key: Buffer,
  id: string,
  timestamp: number | string,
  body: Buffer,
): string {
  const content = Buffer.concat([Buffer.from(`${id}.${timestamp}.`), body])
  return createHmac('sha256', key).update(content).digest('base64')
}

function secretKey(secret: string): Buffer {
  return Buffer.from(secret.slice('whsec_'.length), 'base64')
}

function options(
  headers: Record<string, string | string[] | undefined>,
  overrides: Partial<VerifyStandardWebhookOptions> = {},
): VerifyStandardWebhookOptions {
  return {
    secret: SECRET,
    headers,
    rawBody: BODY,
    now: () => NOW_S * 1000,
    ...overrides,
  }
}

function signedHeaders(
  timestamp = NOW_S,
  id = 'msg_1',
): Record<string, string> {
  return {
    ...signStandardWebhook({ secret: SECRET, id, timestamp, rawBody: BODY }),
  }
}

describe('verifyStandardWebhook', () => {
  it("accepts the specification's example", () => {
    const result = verifyStandardWebhook({
      secret: SPEC.secret,
      headers: {
        'webhook-id': SPEC.id,
        'webhook-timestamp': String(SPEC.timestamp),
        'webhook-signature': SPEC.signature,
      },
      rawBody: Buffer.from(SPEC.body),
      now: () => SPEC.timestamp * 1000,
    })
    expect(result).toEqual({ ok: true })
  })

  it('accepts a signature from an independent implementation', () => {
    const signature = independentSignature(
      secretKey(SECRET),
      'msg_9',
      NOW_S,
      BODY,
    )
    const headers = {
      'webhook-id': 'msg_9',
      'webhook-timestamp': String(NOW_S),
      'webhook-signature': `v1,${signature}`,
    }
    expect(verifyStandardWebhook(options(headers))).toEqual({ ok: true })
  })

  it('signs the raw bytes, even a body that is not UTF-8', () => {
    const rawBody = Buffer.from([0xff, 0xfe, 0x00, 0x41])
    const headers = signStandardWebhook({
      secret: SECRET,
      id: 'm',
      timestamp: NOW_S,
      rawBody,
    })
    expect(headers['webhook-signature']).toBe(
      `v1,${independentSignature(secretKey(SECRET), 'm', NOW_S, rawBody)}`,
    )
    expect(verifyStandardWebhook(options(headers, { rawBody })).ok).toBe(true)
  })

  describe('with several signatures', () => {
    const good = signedHeaders()['webhook-signature']
    const bad = 'v1,' + Buffer.alloc(32, 7).toString('base64')

    it.each([
      ['the good one first', `${good} ${bad}`],
      ['the good one last', `${bad} ${bad} ${good}`],
      ['another version beside it', `v1a,c29tZXRoaW5n ${good}`],
      ['doubled spaces', `${bad}  ${good}`],
    ])('accepts a list with %s', (_, list) => {
      const headers = { ...signedHeaders(), 'webhook-signature': list }
      expect(verifyStandardWebhook(options(headers)).ok).toBe(true)
    })

    it.each([
      ['only wrong signatures', `${bad} ${bad}`],
      ['the right signature under another version', good.replace('v1,', 'v2,')],
      ['the right signature without a version', good.slice(3)],
      ['entries joined by commas', `${bad},${good}`],
    ])('refuses a list with %s', (_, list) => {
      const headers = { ...signedHeaders(), 'webhook-signature': list }
      expect(verifyStandardWebhook(options(headers))).toMatchObject({
        ok: false,
        reason: 'signature_mismatch',
      })
    })
  })

  describe('refuses forgeries', () => {
    it.each([
      [
        'a changed body',
        { rawBody: Buffer.from('{"from":"evil@example.com"}') },
      ],
      [
        'another secret',
        { secret: 'whsec_' + Buffer.from('other').toString('base64') },
      ],
      ['the secret used as text', { secret: SECRET.slice('whsec_'.length) }],
    ])('with %s', (_, overrides) => {
      expect(
        verifyStandardWebhook(options(signedHeaders(), overrides)),
      ).toMatchObject({
        ok: false,
        reason: 'signature_mismatch',
      })
    })

    it('with a changed id', () => {
      const headers = { ...signedHeaders(), 'webhook-id': 'msg_2' }
      expect(verifyStandardWebhook(options(headers)).ok).toBe(false)
    })

    it('with a changed timestamp', () => {
      const headers = {
        ...signedHeaders(),
        'webhook-timestamp': String(NOW_S + 1),
      }
      expect(verifyStandardWebhook(options(headers))).toMatchObject({
        ok: false,
        reason: 'signature_mismatch',
      })
    })
  })

  describe('timestamp tolerance of 300 seconds', () => {
    it.each([
      ['300 s old', -300, 0],
      ['300 s ahead', 300, 0],
      ['300 s old, checked 999 ms later', -300, 999],
      ['exactly now', 0, 0],
    ])('accepts a timestamp %s', (_, offset, extraMs) => {
      const headers = signedHeaders(NOW_S + offset)
      const now = () => NOW_S * 1000 + extraMs
      expect(verifyStandardWebhook(options(headers, { now })).ok).toBe(true)
    })

    it.each([
      ['301 s old', -301, 'stale_timestamp'],
      ['a day old', -86_400, 'stale_timestamp'],
      ['at the epoch', -NOW_S, 'stale_timestamp'],
      ['301 s ahead', 301, 'future_timestamp'],
      ['a day ahead', 86_400, 'future_timestamp'],
    ])('refuses a validly signed timestamp %s', (_, offset, reason) => {
      const result = verifyStandardWebhook(
        options(signedHeaders(NOW_S + offset)),
      )
      expect(result).toMatchObject({ ok: false, reason })
    })

    it('takes another tolerance', () => {
      const headers = signedHeaders(NOW_S - 60)
      expect(
        verifyStandardWebhook(options(headers, { toleranceSeconds: 59 })),
      ).toMatchObject({ ok: false, reason: 'stale_timestamp' })
      expect(
        verifyStandardWebhook(options(headers, { toleranceSeconds: 60 })).ok,
      ).toBe(true)
    })

    it.each([-1, 1.5, Number.NaN])(
      'refuses tolerance %s',
      (toleranceSeconds) => {
        expect(() =>
          verifyStandardWebhook(options(signedHeaders(), { toleranceSeconds })),
        ).toThrow(RangeError)
      },
    )

    it('reads the clock from Date.now by default', () => {
      const headers = signStandardWebhook({ secret: SECRET, rawBody: BODY })
      const result = verifyStandardWebhook({
        secret: SECRET,
        headers,
        rawBody: BODY,
      })
      expect(result).toEqual({ ok: true })
      expect(headers['webhook-id']).toMatch(/^msg_[0-9a-f-]{36}$/)
    })
  })

  it.each([
    'abc',
    '-1700000000',
    '1700000000.5',
    '1.7e9',
    '0x6553F100',
    '17000000000000',
  ])('refuses timestamp %j as malformed', (timestamp) => {
    const headers = { ...signedHeaders(), 'webhook-timestamp': timestamp }
    expect(verifyStandardWebhook(options(headers))).toMatchObject({
      ok: false,
      reason: 'malformed_timestamp',
    })
  })

  it.each(['webhook-id', 'webhook-timestamp', 'webhook-signature'])(
    'refuses a request without %s',
    (name) => {
      for (const value of [undefined, '', '  ', ['a', 'b']]) {
        const headers = { ...signedHeaders(), [name]: value }
        expect(verifyStandardWebhook(options(headers))).toMatchObject({
          ok: false,
          reason: 'missing_headers',
        })
      }
    },
  )

  it('never quotes the secret or a signature in its message', () => {
    const headers = signedHeaders()
    const result = verifyStandardWebhook(
      options(headers, { rawBody: Buffer.from('x') }),
    )
    const text = JSON.stringify(result)
    expect(text).not.toContain(SECRET.slice(6))
    expect(text).not.toContain(headers['webhook-signature']?.slice(3))
  })
})

describe('signStandardWebhook', () => {
  it("reproduces the specification's example", () => {
    expect(
      signStandardWebhook({
        secret: SPEC.secret,
        id: SPEC.id,
        timestamp: SPEC.timestamp,
        rawBody: SPEC.body,
      }),
    ).toEqual({
      'webhook-id': SPEC.id,
      'webhook-timestamp': String(SPEC.timestamp),
      'webhook-signature': SPEC.signature,
    })
  })
})

describe('standardWebhookKey', () => {
  it('base64-decodes a whsec_ secret', () => {
    expect(standardWebhookKey(SPEC.secret)).toEqual(
      Buffer.from('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'base64'),
    )
  })

  it('uses any other secret as its UTF-8 bytes, even one that looks like base64', () => {
    expect(standardWebhookKey('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')).toEqual(
      Buffer.from('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'utf8'),
    )
    expect(standardWebhookKey('pässwort')).toEqual(
      Buffer.from('pässwort', 'utf8'),
    )
  })

  it('verifies with a plain secret as UTF-8 bytes', () => {
    const secret = 'a plain shared secret'
    const signature = independentSignature(
      Buffer.from(secret),
      'msg_1',
      NOW_S,
      BODY,
    )
    const headers = {
      'webhook-id': 'msg_1',
      'webhook-timestamp': String(NOW_S),
      'webhook-signature': `v1,${signature}`,
    }
    expect(verifyStandardWebhook(options(headers, { secret })).ok).toBe(true)
  })

  it.each(['whsec_', 'whsec_not*base64', 'whsec_abc=defg', 'whsec_Q', ''])(
    'refuses secret %j with a fixed message that quotes nothing',
    (secret) => {
      expect(() => standardWebhookKey(secret)).toThrow(
        /^the (whsec_ )?webhook secret is (not valid base64|empty)$/,
      )
    },
  )

  it('accepts unpadded base64 after whsec_', () => {
    expect(standardWebhookKey('whsec_YWJj')).toEqual(Buffer.from('abc'))
    expect(standardWebhookKey('whsec_YWI')).toEqual(Buffer.from('ab'))
    expect(standardWebhookKey('whsec_YWI=')).toEqual(Buffer.from('ab'))
  })
})
