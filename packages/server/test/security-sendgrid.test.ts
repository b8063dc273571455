import { createSign, generateKeyPairSync } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import {
  generateSendGridKeyPair,
  parseSendGridPublicKey,
  signSendGridRequest,
  verifySendGridSignature,
  type VerifySendGridOptions,
} from '../src/http/security/sendgrid-signature.js'

const SIGNATURE_HEADER = 'x-twilio-email-event-webhook-signature'
const TIMESTAMP_HEADER = 'x-twilio-email-event-webhook-timestamp'

// The example shared by SendGrid's helper libraries' tests.
const EXAMPLE = {
  publicKey:
    'MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaW' +
    'jcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==',
  payload:
    '{"category":"example_payload","event":"test_event","message_id":"message_id"}',
  signature:
    'MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6B' +
    'pSzoQsbVRamr2nlxFDWYNH2j/0=',
  timestamp: '1588788367',
}

const NOW_S = 1_700_000_000
const BODY = Buffer.from('[{"email":"b@example.com","event":"delivered"}]\r\n')
const pair = generateSendGridKeyPair()

function options(
  headers: Record<string, string | undefined>,
  overrides: Partial<VerifySendGridOptions> = {},
): VerifySendGridOptions {
  return {
    publicKey: pair.publicKey,
    headers,
    rawBody: BODY,
    now: () => NOW_S * 1000,
    ...overrides,
  }
}

function signedHeaders(timestamp = NOW_S): Record<string, string> {
  return {
    ...signSendGridRequest({
      privateKey: pair.privateKey,
      rawBody: BODY,
      timestamp,
    }),
  }
}

describe('verifySendGridSignature', () => {
  it("accepts SendGrid's published example", () => {
    const result = verifySendGridSignature({
      publicKey: EXAMPLE.publicKey,
      headers: {
        [SIGNATURE_HEADER]: EXAMPLE.signature,
        [TIMESTAMP_HEADER]: EXAMPLE.timestamp,
      },
      rawBody: Buffer.from(EXAMPLE.payload),
      now: () => Number(EXAMPLE.timestamp) * 1000,
    })
    expect(result).toEqual({ ok: true })
  })

  it("refuses SendGrid's example with another timestamp", () => {
    const result = verifySendGridSignature({
      publicKey: EXAMPLE.publicKey,
      headers: {
        [SIGNATURE_HEADER]: EXAMPLE.signature,
        [TIMESTAMP_HEADER]: '1588788368',
      },
      rawBody: Buffer.from(EXAMPLE.payload),
      now: () => Number(EXAMPLE.timestamp) * 1000,
    })
    expect(result).toMatchObject({ ok: false, reason: 'signature_mismatch' })
  })

  it('accepts a signature made independently with createSign', () => {
    const signer = createSign('sha256')
    signer.update(`${NOW_S}`)
    signer.update(BODY)
    const signature = signer.sign(pair.privateKey, 'base64')
    const headers = {
      [SIGNATURE_HEADER]: signature,
      [TIMESTAMP_HEADER]: `${NOW_S}`,
    }
    expect(verifySendGridSignature(options(headers))).toEqual({ ok: true })
  })

  it('accepts the key as base64 DER, as PEM, or parsed', () => {
    const parsed = parseSendGridPublicKey(pair.publicKey)
    const pem = parsed.export({ format: 'pem', type: 'spki' }).toString()
    for (const publicKey of [pair.publicKey, pem, parsed]) {
      expect(
        verifySendGridSignature(options(signedHeaders(), { publicKey })).ok,
      ).toBe(true)
    }
  })

  it.each([
    ['a changed body', { rawBody: Buffer.from('[{"event":"bounce"}]') }],
    [
      'a body with one byte more',
      { rawBody: Buffer.concat([BODY, Buffer.from(' ')]) },
    ],
    ['the wrong key', { publicKey: generateSendGridKeyPair().publicKey }],
  ])('refuses %s', (_, overrides) => {
    expect(
      verifySendGridSignature(options(signedHeaders(), overrides)),
    ).toMatchObject({
      ok: false,
      reason: 'signature_mismatch',
    })
  })

  it('refuses a changed timestamp within the tolerance', () => {
    const headers = {
      ...signedHeaders(),
      [TIMESTAMP_HEADER]: String(NOW_S - 1),
    }
    expect(verifySendGridSignature(options(headers))).toMatchObject({
      ok: false,
      reason: 'signature_mismatch',
    })
  })

  it.each([
    ['not base64', '***', 'malformed_signature'],
    [
      'base64 that is not DER',
      Buffer.alloc(64, 1).toString('base64'),
      'signature_mismatch',
    ],
    ['a truncated signature', 'MEUCIQCtIHJeH93Y', 'signature_mismatch'],
  ])('refuses a signature that is %s', (_, signature, reason) => {
    const headers = { ...signedHeaders(), [SIGNATURE_HEADER]: signature }
    expect(verifySendGridSignature(options(headers))).toMatchObject({
      ok: false,
      reason,
    })
  })

  it.each([SIGNATURE_HEADER, TIMESTAMP_HEADER])(
    'refuses a request without %s',
    (name) => {
      for (const value of [undefined, '']) {
        const headers = { ...signedHeaders(), [name]: value }
        expect(verifySendGridSignature(options(headers))).toMatchObject({
          ok: false,
          reason: 'missing_headers',
        })
      }
    },
  )

  it.each([
    ['300 s old', -300, true],
    ['300 s ahead', 300, true],
    ['301 s old', -301, 'stale_timestamp'],
    ['301 s ahead', 301, 'future_timestamp'],
  ])('treats a validly signed timestamp %s', (_, offset, outcome) => {
    const result = verifySendGridSignature(
      options(signedHeaders(NOW_S + offset)),
    )
    if (outcome === true) expect(result).toEqual({ ok: true })
    else expect(result).toMatchObject({ ok: false, reason: outcome })
  })

  it('takes another tolerance', () => {
    const headers = signedHeaders(NOW_S - 3600)
    expect(
      verifySendGridSignature(options(headers, { toleranceSeconds: 3600 })).ok,
    ).toBe(true)
  })

  it.each(['soon', '1.5e9', '-1'])(
    'refuses timestamp %j as malformed',
    (timestamp) => {
      const headers = { ...signedHeaders(), [TIMESTAMP_HEADER]: timestamp }
      expect(verifySendGridSignature(options(headers))).toMatchObject({
        ok: false,
        reason: 'malformed_timestamp',
      })
    },
  )
})

describe('parseSendGridPublicKey', () => {
  it('accepts base64 DER broken over lines, and PEM', () => {
    const wrapped = EXAMPLE.publicKey.replace(/(.{40})/g, '$1\n')
    expect(parseSendGridPublicKey(`\n${wrapped}\n`).asymmetricKeyType).toBe(
      'ec',
    )
    const pem = parseSendGridPublicKey(EXAMPLE.publicKey)
      .export({ format: 'pem', type: 'spki' })
      .toString()
    expect(parseSendGridPublicKey(pem).asymmetricKeyDetails?.namedCurve).toBe(
      'prime256v1',
    )
  })

  it('refuses a private key without quoting it', () => {
    const pem = pair.privateKey
      .export({ format: 'pem', type: 'pkcs8' })
      .toString()
    expect(() => parseSendGridPublicKey(pem)).toThrow(/private key/)
    try {
      parseSendGridPublicKey(pem)
    } catch (error) {
      expect(String(error)).not.toContain(pem.split('\n')[1])
    }
  })

  it.each([
    ['garbage', 'not a key'],
    ['empty text', ''],
    ['base64 that is no key', Buffer.from('hello world').toString('base64')],
    [
      'an RSA key',
      generateKeyPairSync('rsa', { modulusLength: 1024 })
        .publicKey.export({ format: 'der', type: 'spki' })
        .toString('base64'),
    ],
    [
      'a P-384 key',
      generateKeyPairSync('ec', { namedCurve: 'secp384r1' })
        .publicKey.export({ format: 'pem', type: 'spki' })
        .toString(),
    ],
  ])('refuses %s', (_, text) => {
    expect(() => parseSendGridPublicKey(text)).toThrow(RangeError)
  })
})

describe('signSendGridRequest', () => {
  it('signs the timestamp text followed by the body', () => {
    const headers = signSendGridRequest({
      privateKey: pair.privateKey,
      rawBody: 'text body',
      timestamp: 42,
    })
    expect(headers[TIMESTAMP_HEADER]).toBe('42')
    const result = verifySendGridSignature({
      publicKey: pair.publicKey,
      headers,
      rawBody: Buffer.from('text body'),
      now: () => 42_000,
    })
    expect(result).toEqual({ ok: true })
  })
})
