import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { checkBearer, parseApiKeys } from '../src/http/security/api-keys.js'
import {
  generateSendGridKeyPair,
  signSendGridRequest,
  verifySendGridSignature,
} from '../src/http/security/sendgrid-signature.js'
import {
  signStandardWebhook,
  verifyStandardWebhook,
} from '../src/http/security/standard-webhooks.js'
import {
  signTwilioRequest,
  verifyTwilioSignature,
} from '../src/http/security/twilio-signature.js'

const FORM = 'application/x-www-form-urlencoded'
const NOW_S = 1_700_000_000
const now = () => NOW_S * 1000

// Text a form can carry intact: whole graphemes, so no lone surrogates
// (which URL encoding would replace).
const text = fc.string({ unit: 'grapheme', maxLength: 12 })
const anything = fc.string({ unit: 'binary', maxLength: 64 })
const formEntries = fc.array(fc.tuple(text, text), { maxLength: 8 })

function searchOf(entries: readonly (readonly [string, string])[]) {
  const search = new URLSearchParams()
  for (const [name, value] of entries) search.append(name, value)
  return search
}

function flipByte(bytes: Uint8Array, index: number): Buffer {
  const copy = Buffer.from(bytes)
  const at = index % copy.length
  copy[at] = (copy[at] ?? 0) ^ 0x01
  return copy
}

describe('Twilio signatures, by property', () => {
  it('accept any signed form, read back from its encoded body', () => {
    fc.assert(
      fc.property(text, formEntries, (token, entries) => {
        const form = searchOf(entries)
        const url = 'https://h.example/api/webhooks/sms?x=1'
        const signed = signTwilioRequest({
          authToken: token,
          url,
          form,
          contentType: FORM,
        })
        const rawBody = Buffer.from(form.toString())
        const result = verifyTwilioSignature({
          authToken: token,
          ...signed,
          rawBody,
          contentType: FORM,
        })
        expect(result.ok).toBe(true)
      }),
      { numRuns: 500 },
    )
  })

  it('refuse a signed form once any value is changed', () => {
    fc.assert(
      fc.property(
        formEntries.filter((entries) => entries.length > 0),
        fc.nat(),
        (entries, pick) => {
          const form = searchOf(entries)
          const url = 'https://h.example/hook'
          const signed = signTwilioRequest({
            authToken: 't',
            url,
            form,
            contentType: FORM,
          })
          const index = pick % entries.length
          const changed = entries.map(([name, value], at) =>
            at === index
              ? ([name, `${value}\u0000x`] as const)
              : ([name, value] as const),
          )
          const result = verifyTwilioSignature({
            authToken: 't',
            ...signed,
            form: searchOf(changed),
            contentType: FORM,
          })
          expect(result.ok).toBe(false)
        },
      ),
      { numRuns: 300 },
    )
  })

  it('accept any signed JSON body and refuse it with one bit flipped', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 256 }),
        fc.nat(),
        (body, at) => {
          const signed = signTwilioRequest({
            authToken: 't',
            url: 'http://127.0.0.1:8080/api/webhooks/sms',
            rawBody: body,
            contentType: 'application/json',
          })
          const base = {
            authToken: 't',
            ...signed,
            contentType: 'application/json',
          }
          expect(verifyTwilioSignature({ ...base, rawBody: body }).ok).toBe(
            true,
          )
          expect(
            verifyTwilioSignature({ ...base, rawBody: flipByte(body, at) }).ok,
          ).toBe(false)
        },
      ),
      { numRuns: 300 },
    )
  })

  it('never throw on arbitrary signatures and URLs', () => {
    fc.assert(
      fc.property(anything, anything, (signature, url) => {
        const result = verifyTwilioSignature({
          authToken: 't',
          url,
          signature,
          rawBody: Buffer.from('{}'),
          contentType: 'application/json',
        })
        expect(result.ok).toBe(false)
      }),
      { numRuns: 1000 },
    )
  })
})

describe('Standard Webhooks signatures, by property', () => {
  const secret =
    'whsec_' + Buffer.from('property-test-secret-24b').toString('base64')

  it('accept any signed body and refuse it with one bit flipped', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 256 }),
        fc.string({ minLength: 1, maxLength: 40 }),
        fc.integer({ min: -300, max: 300 }),
        fc.nat(),
        (rawBody, id, offset, at) => {
          const headers = signStandardWebhook({
            secret,
            id,
            timestamp: NOW_S + offset,
            rawBody,
          })
          const base = { secret, headers, now }
          const accepted = verifyStandardWebhook({ ...base, rawBody })
          const tampered = verifyStandardWebhook({
            ...base,
            rawBody: flipByte(rawBody, at),
          })
          // A header value is trimmed, so an id with edge whitespace is
          // not the id that was signed.
          expect(accepted.ok).toBe(id.trim() === id)
          expect(tampered.ok).toBe(false)
        },
      ),
      { numRuns: 300 },
    )
  })

  it('never throw on arbitrary headers', () => {
    fc.assert(
      fc.property(anything, anything, anything, (id, timestamp, signature) => {
        const result = verifyStandardWebhook({
          secret,
          headers: {
            'webhook-id': id,
            'webhook-timestamp': timestamp,
            'webhook-signature': signature,
          },
          rawBody: Buffer.from('{}'),
          now,
        })
        expect(result.ok).toBe(false)
      }),
      { numRuns: 1000 },
    )
  })
})

describe('SendGrid signatures, by property', () => {
  const pair = generateSendGridKeyPair()

  it('accept any signed body and refuse it with one bit flipped', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 256 }),
        fc.nat(),
        (rawBody, at) => {
          const headers = signSendGridRequest({
            privateKey: pair.privateKey,
            rawBody,
            timestamp: NOW_S,
          })
          const base = { publicKey: pair.publicKey, headers, now }
          expect(verifySendGridSignature({ ...base, rawBody }).ok).toBe(true)
          expect(
            verifySendGridSignature({ ...base, rawBody: flipByte(rawBody, at) })
              .ok,
          ).toBe(false)
        },
      ),
      { numRuns: 100 },
    )
  })

  it('never throw on arbitrary headers', () => {
    fc.assert(
      fc.property(anything, anything, (signature, timestamp) => {
        const result = verifySendGridSignature({
          publicKey: pair.publicKey,
          headers: {
            'x-twilio-email-event-webhook-signature': signature,
            'x-twilio-email-event-webhook-timestamp': timestamp,
          },
          rawBody: Buffer.from('[]'),
          now,
        })
        expect(result.ok).toBe(false)
      }),
      { numRuns: 1000 },
    )
  })
})

describe('API keys, by property', () => {
  const secret = 'property-test-key-0123'
  const keys = parseApiKeys(secret)

  it('never throw on arbitrary headers, and accept only the exact key', () => {
    fc.assert(
      fc.property(anything, (header) => {
        const result = checkBearer(header, keys)
        const token = /^bearer\s+(\S+)\s*$/i.exec(header.trim())?.[1]
        expect(result.ok).toBe(token === secret)
      }),
      { numRuns: 2000 },
    )
  })

  it('accept the key behind any bearer spelling and spacing', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('Bearer', 'bearer', 'BEARER', 'bEaReR'),
        fc.stringMatching(/^[ \t]{1,4}$/),
        (scheme, gap) => {
          expect(checkBearer(`${scheme}${gap}${secret}`, keys).ok).toBe(true)
        },
      ),
    )
  })
})
