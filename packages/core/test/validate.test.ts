import { describe, expect, it } from 'vitest'
import { ValidationError } from '@parley/core'
import { validateInbound, validateSend } from '../src/messages/validate.js'
import {
  emailRequest,
  emailWebhook,
  rejectedFields,
  smsRequest,
  smsWebhook,
  validationDetails,
} from './support.js'

const options = { defaultRegion: 'US', maxAttachments: 8 }

const sendSms = (input: unknown) => validateSend('sms', input, options)
const sendEmail = (input: unknown) => validateSend('email', input, options)
const inboundSms = (input: unknown) => validateInbound('sms', input, options)
const inboundEmail = (input: unknown) =>
  validateInbound('email', input, options)

const NUL = 'a\u0000b'
const LONE_HIGH = 'a\uD83Db'
const LONE_LOW = 'a\uDE00b'
const REVERSED_PAIR = 'a\uDE00\uD83Db'

describe('validateSend for SMS and MMS', () => {
  it('accepts a valid SMS and normalizes its participants and timestamp', () => {
    const message = sendSms(
      smsRequest({
        from: '(804) 555-1234',
        to: '202.555.0100',
        timestamp: '2024-11-01T10:00:00-04:00',
      }),
    )

    expect(message).toEqual({
      channel: 'sms',
      family: 'sms',
      from: '(804) 555-1234',
      to: '202.555.0100',
      fromParticipant: '+18045551234',
      toParticipant: '+12025550100',
      subject: null,
      body: 'Hello there',
      attachments: [],
      timestamp: '2024-11-01T14:00:00.000Z',
    })
  })

  it('rejects a body that is not a JSON object', () => {
    for (const input of [null, undefined, 'text', 42, [smsRequest()]]) {
      expect(rejectedFields(() => sendSms(input))).toEqual(['(body)'])
    }
  })

  it.each(['from', 'to', 'type', 'body', 'timestamp'])(
    'reports a missing %s as required',
    (field) => {
      const input = smsRequest()
      delete input[field]

      const details = validationDetails(() => sendSms(input))

      expect(details).toEqual([{ field, message: 'is required' }])
    },
  )

  it.each(['from', 'to', 'body', 'timestamp'])(
    'rejects a %s that is not a string',
    (field) => {
      for (const value of [42, true, {}, ['x']]) {
        const details = validationDetails(() =>
          sendSms(smsRequest({ [field]: value })),
        )
        expect(details).toEqual([{ field, message: 'must be a string' }])
      }
    },
  )

  it('treats a null required field as missing', () => {
    expect(rejectedFields(() => sendSms(smsRequest({ body: null })))).toEqual([
      'body',
    ])
  })

  it('rejects a type other than sms or mms', () => {
    for (const type of ['email', 'SMS', 'text', '', 1, null]) {
      expect(rejectedFields(() => sendSms(smsRequest({ type })))).toEqual([
        'type',
      ])
    }
  })

  it('rejects an MMS whose attachments are null, missing or empty', () => {
    for (const attachments of [null, undefined, []]) {
      const details = validationDetails(() =>
        sendSms(smsRequest({ type: 'mms', attachments })),
      )
      expect(details).toEqual([
        {
          field: 'attachments',
          message: 'an MMS needs at least one attachment',
        },
      ])
    }
  })

  it('accepts an MMS with an empty body when it has an attachment', () => {
    const message = sendSms(
      smsRequest({
        type: 'mms',
        body: '',
        attachments: ['https://cdn.example.com/cat.png'],
      }),
    )

    expect(message.channel).toBe('mms')
    expect(message.family).toBe('sms')
    expect(message.body).toBe('')
    expect(message.attachments).toEqual(['https://cdn.example.com/cat.png'])
  })

  it('rejects an SMS whose body is empty or only white space', () => {
    for (const body of ['', '   ', '\n\t']) {
      expect(rejectedFields(() => sendSms(smsRequest({ body })))).toEqual([
        'body',
      ])
    }
  })

  it('accepts an SMS with attachments as given, in order', () => {
    const attachments = ['http://a.example/1.png', 'https://b.example/2.jpg']

    const message = sendSms(smsRequest({ attachments }))

    expect(message.attachments).toEqual(attachments)
  })

  it('accepts exactly the attachment limit and rejects one more', () => {
    const urls = (n: number) =>
      Array.from({ length: n }, (_, i) => `https://cdn.example.com/${i}.png`)

    expect(sendSms(smsRequest({ attachments: urls(8) })).attachments).toEqual(
      urls(8),
    )
    expect(
      validationDetails(() => sendSms(smsRequest({ attachments: urls(9) }))),
    ).toEqual([{ field: 'attachments', message: 'must hold at most 8 URLs' }])
  })

  it('applies the configured attachment limit', () => {
    const strict = { defaultRegion: 'US', maxAttachments: 1 }
    const input = smsRequest({
      type: 'mms',
      attachments: ['https://a.example/1', 'https://a.example/2'],
    })

    expect(rejectedFields(() => validateSend('sms', input, strict))).toEqual([
      'attachments',
    ])
  })

  it('rejects attachments that are not an array', () => {
    for (const attachments of ['https://a.example/1.png', {}, 7]) {
      expect(
        rejectedFields(() => sendSms(smsRequest({ attachments }))),
      ).toEqual(['attachments'])
    }
  })

  it.each([
    ['ftp', 'ftp://files.example.com/cat.png'],
    ['javascript', 'javascript:alert(1)'],
    ['data', 'data:image/png;base64,AAAA'],
    ['file', 'file:///etc/passwd'],
    ['relative path', '/images/cat.png'],
    ['protocol-relative', '//cdn.example.com/cat.png'],
    ['garbage', 'not a url'],
    ['empty', ''],
    ['host-less', 'http://'],
    ['non-string', 42],
  ])('rejects a %s attachment and names its index', (_, url) => {
    const input = smsRequest({
      type: 'mms',
      attachments: ['https://ok.example/1.png', url],
    })

    expect(rejectedFields(() => sendSms(input))).toEqual(['attachments[1]'])
  })

  it('accepts http and https attachment URLs in any letter case', () => {
    const attachments = ['HTTP://Example.com/A.png', 'HTTPS://example.com/b']

    expect(sendSms(smsRequest({ attachments })).attachments).toEqual(
      attachments,
    )
  })

  it('rejects an outbound SMS from an alphanumeric sender ID', () => {
    expect(rejectedFields(() => sendSms(smsRequest({ from: 'ACME' })))).toEqual(
      ['from'],
    )
  })

  it('rejects addresses that do not normalize, naming each', () => {
    const input = smsRequest({ from: '1-800-FLOWERS', to: '12' })

    expect(rejectedFields(() => sendSms(input)).sort()).toEqual(['from', 'to'])
  })

  it('reports every bad field at once', () => {
    const input = {
      from: 'not a number',
      to: 42,
      type: 'fax',
      body: '',
      attachments: ['ftp://x.example/a', 'https://ok.example/b', 'nope'],
      timestamp: '2024-02-30T00:00:00Z',
    }

    const error = (() => {
      try {
        sendSms(input)
      } catch (caught) {
        return caught
      }
      return undefined
    })()

    expect(error).toBeInstanceOf(ValidationError)
    const details = (error as ValidationError).details
    expect(details.map((d) => d.field).sort()).toEqual(
      [
        'attachments[0]',
        'attachments[2]',
        'body',
        'from',
        'timestamp',
        'to',
        'type',
      ].sort(),
    )
    expect((error as ValidationError).code).toBe('validation_failed')
    for (const field of ['from', 'to', 'type', 'body', 'timestamp']) {
      expect((error as ValidationError).message).toContain(field)
    }
  })

  it('ignores unknown fields', () => {
    const message = sendSms(
      smsRequest({ priority: 'high', __proto__x: 1, extra: { nested: true } }),
    )

    expect(message).not.toHaveProperty('priority')
    expect(message).not.toHaveProperty('extra')
    expect(message.body).toBe('Hello there')
  })

  it('does not read a subject on SMS', () => {
    expect(sendSms(smsRequest({ subject: 'ignored\n' })).subject).toBeNull()
  })
})

describe('validateSend for email', () => {
  it('accepts a valid email and keeps its addresses and body as given', () => {
    const body = '<p>Hi <b>Bob</b> &amp; co</p>\r\n'

    const message = sendEmail(
      emailRequest({
        from: 'Ann <Ann@Example.com>',
        to: '"Doe, Jane" <jane+news@example.com>',
        body,
      }),
    )

    expect(message).toMatchObject({
      channel: 'email',
      family: 'email',
      from: 'Ann <Ann@Example.com>',
      to: '"Doe, Jane" <jane+news@example.com>',
      fromParticipant: 'ann@example.com',
      toParticipant: 'jane@example.com',
      subject: 'Hi',
      body,
    })
  })

  it('needs no type field', () => {
    const input = emailRequest()

    expect(sendEmail(input).channel).toBe('email')
  })

  it('treats a missing or null subject as no subject', () => {
    const input = emailRequest()
    delete input.subject

    expect(sendEmail(input).subject).toBeNull()
    expect(sendEmail(emailRequest({ subject: null })).subject).toBeNull()
  })

  it('rejects a subject that is not a string', () => {
    expect(
      validationDetails(() => sendEmail(emailRequest({ subject: 5 }))),
    ).toEqual([{ field: 'subject', message: 'must be a string' }])
  })

  it('rejects a subject with a line break', () => {
    for (const subject of ['Hi\nBcc: eve@example.com', 'Hi\r', 'a\r\nb']) {
      expect(
        validationDetails(() => sendEmail(emailRequest({ subject }))),
      ).toEqual([{ field: 'subject', message: 'must be a single line' }])
    }
  })

  it('rejects an empty email body', () => {
    for (const body of ['', '  ']) {
      expect(rejectedFields(() => sendEmail(emailRequest({ body })))).toEqual([
        'body',
      ])
    }
  })

  it('rejects addresses that are not email addresses', () => {
    const input = emailRequest({ from: '+18045551234', to: 'bob@' })

    expect(rejectedFields(() => sendEmail(input)).sort()).toEqual([
      'from',
      'to',
    ])
  })

  it('rejects attachments that are not http(s) URLs', () => {
    const input = emailRequest({ attachments: ['mailto:ann@example.com'] })

    expect(rejectedFields(() => sendEmail(input))).toEqual(['attachments[0]'])
  })
})

describe('timestamp validation', () => {
  it.each([
    ['2024-11-01T10:00:00-04:00', '2024-11-01T14:00:00.000Z'],
    ['2024-11-01T14:00:00Z', '2024-11-01T14:00:00.000Z'],
    ['2024-11-01T14:00:00.5Z', '2024-11-01T14:00:00.500Z'],
    ['2024-11-01T14:00:00.123456789Z', '2024-11-01T14:00:00.123Z'],
    ['2024-11-01T19:30:00+05:30', '2024-11-01T14:00:00.000Z'],
    ['2024-11-01T19:30:00+0530', '2024-11-01T14:00:00.000Z'],
    ['2024-11-01T23:00:00+09', '2024-11-01T14:00:00.000Z'],
    ['2024-11-01t14:00z', '2024-11-01T14:00:00.000Z'],
    ['2024-11-01T00:30:00+01:00', '2024-10-31T23:30:00.000Z'],
    ['2024-02-29T12:00:00Z', '2024-02-29T12:00:00.000Z'],
    ['2000-02-29T12:00:00Z', '2000-02-29T12:00:00.000Z'],
    ['2024-12-31T23:59:59.999Z', '2024-12-31T23:59:59.999Z'],
    ['2024-12-31T22:00:00-03:00', '2025-01-01T01:00:00.000Z'],
  ])('normalizes %s to %s', (timestamp, expected) => {
    expect(sendSms(smsRequest({ timestamp })).timestamp).toBe(expected)
  })

  it.each([
    ['no zone', '2024-11-01T14:00:00'],
    ['a date only', '2024-11-01'],
    ['February 30', '2024-02-30T00:00:00Z'],
    ['February 29 of 2023', '2023-02-29T00:00:00Z'],
    ['February 29 of 1900', '1900-02-29T00:00:00Z'],
    ['April 31', '2024-04-31T00:00:00Z'],
    ['month 13', '2024-13-01T00:00:00Z'],
    ['month 0', '2024-00-10T00:00:00Z'],
    ['day 0', '2024-01-00T00:00:00Z'],
    ['hour 24', '2024-11-01T24:00:00Z'],
    ['minute 60', '2024-11-01T14:60:00Z'],
    ['second 60', '2024-11-01T14:00:60Z'],
    ['an offset hour of 24', '2024-11-01T14:00:00+24:00'],
    ['an offset minute of 60', '2024-11-01T14:00:00+01:60'],
    ['a space instead of T', '2024-11-01 14:00:00Z'],
    ['garbage', 'yesterday'],
    ['an empty string', ''],
    ['epoch milliseconds as text', '1730469600000'],
    ['a zone name', '2024-11-01T14:00:00 EST'],
    ['a trailing character', '2024-11-01T14:00:00Zx'],
  ])('rejects a timestamp with %s', (_, timestamp) => {
    expect(validationDetails(() => sendSms(smsRequest({ timestamp })))).toEqual(
      [
        {
          field: 'timestamp',
          message: 'must be an ISO-8601 instant with Z or an offset',
        },
      ],
    )
  })

  it('rejects a timestamp whose UTC instant falls outside years 0001-9999', () => {
    // Beyond 9999 the instant would be stored as +010000-…, which breaks the
    // fixed-width UTC text that SQLite sorts by; Postgres refuses year 0000.
    for (const timestamp of [
      '9999-12-31T23:30:00-01:00',
      '0000-01-01T00:30:00+01:00',
      '0000-06-01T00:00:00Z',
      '0000-12-31T23:59:59.999Z',
      '0001-01-01T00:00:00+01:00',
      '0001-01-01T00:59:59.999+01:00',
    ]) {
      expect(
        validationDetails(() => sendSms(smsRequest({ timestamp }))),
      ).toEqual([
        {
          field: 'timestamp',
          message: 'must fall in the UTC years 0001 to 9999',
        },
      ])
    }
  })

  it('accepts the first and last instants of years 0001-9999', () => {
    for (const [timestamp, utc] of [
      ['0001-01-01T00:00:00Z', '0001-01-01T00:00:00.000Z'],
      ['0001-01-01T00:00:00-01:00', '0001-01-01T01:00:00.000Z'],
      ['9999-12-31T23:59:59.999Z', '9999-12-31T23:59:59.999Z'],
      ['9999-12-31T23:59:59+01:00', '9999-12-31T22:59:59.000Z'],
    ] as const) {
      expect(sendSms(smsRequest({ timestamp })).timestamp).toBe(utc)
    }
  })

  it('rejects a numeric timestamp as not a string', () => {
    expect(
      validationDetails(() => sendSms(smsRequest({ timestamp: 1730469600 }))),
    ).toEqual([{ field: 'timestamp', message: 'must be a string' }])
  })
})

describe('unstorable characters', () => {
  const smsFields = ['from', 'to', 'body', 'timestamp']

  it.each([
    ['a NUL character', NUL],
    ['a lone high surrogate', LONE_HIGH],
    ['a lone low surrogate', LONE_LOW],
    ['a reversed surrogate pair', REVERSED_PAIR],
  ])('rejects %s in every SMS string field', (_, bad) => {
    for (const field of smsFields) {
      const details = validationDetails(() =>
        sendSms(smsRequest({ [field]: bad })),
      )
      expect(details).toEqual([
        {
          field,
          message: 'must not contain NUL characters or unpaired surrogates',
        },
      ])
    }
  })

  it('rejects NUL and lone surrogates in an attachment URL', () => {
    for (const bad of [NUL, LONE_HIGH]) {
      const input = smsRequest({
        type: 'mms',
        attachments: [`https://a.example/${bad}`],
      })
      expect(rejectedFields(() => sendSms(input))).toEqual(['attachments[0]'])
    }
  })

  it('rejects NUL and lone surrogates in an email subject and body', () => {
    for (const bad of [NUL, LONE_HIGH, LONE_LOW]) {
      for (const field of ['subject', 'body', 'from', 'to']) {
        expect(
          rejectedFields(() => sendEmail(emailRequest({ [field]: bad }))),
        ).toEqual([field])
      }
    }
  })

  it('rejects NUL and lone surrogates in provider ids', () => {
    for (const bad of [NUL, LONE_LOW]) {
      expect(
        rejectedFields(() =>
          inboundSms(smsWebhook({ messaging_provider_id: bad })),
        ),
      ).toEqual(['messaging_provider_id'])
      expect(
        rejectedFields(() => inboundEmail(emailWebhook({ xillio_id: bad }))),
      ).toEqual(['xillio_id'])
    }
  })

  it('accepts emoji written as surrogate pairs, including ZWJ sequences', () => {
    const body = 'Hi 👋🏽 family 👨‍👩‍👧‍👦 flag 🇺🇸 😀'

    expect(sendSms(smsRequest({ body })).body).toBe(body)
    expect(sendEmail(emailRequest({ subject: '🎉 party', body })).subject).toBe(
      '🎉 party',
    )
  })
})

describe('validateInbound', () => {
  it('returns the message and the provider id of an SMS webhook', () => {
    const result = inboundSms(smsWebhook({ messaging_provider_id: 'SM123' }))

    expect(result.providerMessageId).toBe('SM123')
    expect(result.message.fromParticipant).toBe('+18045551234')
  })

  it('returns the message and the provider id of an email webhook', () => {
    const result = inboundEmail(emailWebhook({ xillio_id: 'x-9' }))

    expect(result.providerMessageId).toBe('x-9')
    expect(result.message.channel).toBe('email')
  })

  it.each([
    ['sms', 'messaging_provider_id'],
    ['email', 'xillio_id'],
  ] as const)(
    'requires %s webhooks to carry a non-empty %s string',
    (family, field) => {
      const valid = family === 'sms' ? smsWebhook() : emailWebhook()
      const receive = family === 'sms' ? inboundSms : inboundEmail
      const missing = { ...valid }
      delete missing[field]

      expect(rejectedFields(() => receive(missing))).toEqual([field])
      for (const value of ['', '   ', 17, null, ['a']]) {
        expect(
          rejectedFields(() => receive({ ...valid, [field]: value })),
        ).toEqual([field])
      }
    },
  )

  it('does not accept the other family’s provider id field', () => {
    const input = smsRequest({ xillio_id: 'X-1' })

    expect(rejectedFields(() => inboundSms(input))).toEqual([
      'messaging_provider_id',
    ])
  })

  it('rejects a provider id longer than 255 characters', () => {
    expect(
      rejectedFields(() =>
        inboundSms(smsWebhook({ messaging_provider_id: 'x'.repeat(256) })),
      ),
    ).toEqual(['messaging_provider_id'])
    expect(
      inboundSms(smsWebhook({ messaging_provider_id: 'x'.repeat(255) }))
        .providerMessageId,
    ).toHaveLength(255)
  })

  it('accepts an inbound SMS from an alphanumeric sender ID, kept as given', () => {
    for (const from of [
      'ACME',
      'Acme Bank',
      'A1',
      'X',
      'BANK 24 UK',
      ' ACME ',
    ]) {
      const trimmed = from.trim()
      const { message } = inboundSms(smsWebhook({ from }))
      expect(message.fromParticipant).toBe(trimmed)
      expect(message.from).toBe(from)
    }
  })

  it('rejects sender IDs that are too long, lack a letter or use symbols', () => {
    for (const from of ['ACME-BANK', 'TWELVECHARSX', 'ACME!', 'Zoë']) {
      expect(rejectedFields(() => inboundSms(smsWebhook({ from })))).toEqual([
        'from',
      ])
    }
  })

  it('never accepts a sender ID as the recipient', () => {
    expect(
      rejectedFields(() => inboundSms(smsWebhook({ to: 'ACME' }))),
    ).toEqual(['to'])
  })

  it('reports bad message fields and a missing provider id together', () => {
    const input = smsRequest({ body: '' })

    expect(rejectedFields(() => inboundSms(input)).sort()).toEqual([
      'body',
      'messaging_provider_id',
    ])
  })
})
