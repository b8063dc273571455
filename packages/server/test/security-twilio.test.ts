import { createHash, createHmac } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { publicUrl } from '../src/http/security/public-url.js'
import {
  signTwilioRequest,
  twilioBodyHash,
  type TwilioFailure,
  twilioSignature,
  verifyTwilioSignature,
  type VerifyTwilioOptions,
} from '../src/http/security/twilio-signature.js'

const TOKEN = '12345'
const FORM = 'application/x-www-form-urlencoded'
const JSON_TYPE = 'application/json'

// Twilio's documentation example (webhooks security page and its
// api-snippets), checked against the published signatures.
const DOC_URL = 'https://mycompany.com/myapp.php?foo=1&bar=2'
const docParams = (caller: string) => ({
  CallSid: 'CA1234567890ABCDE',
  Caller: caller,
  Digits: '1234',
  From: caller,
  To: '+18005551212',
})

// A straightforward second implementation of Twilio's rule, for inputs
// without repeated names: the URL, then name + value with names sorted.
function independentSignature(
  token: string,
  url: string,
  params: Record<string, string>,
): string {
  let data = url
  for (const name of Object.keys(params).sort()) data += name + params[name]
  return createHmac('sha1', token).update(data, 'utf8').digest('base64')
}

function formBody(params: Record<string, string | string[]>): Buffer {
  const search = new URLSearchParams()
  for (const [name, value] of Object.entries(params)) {
    for (const one of [value].flat()) search.append(name, one)
  }
  return Buffer.from(search.toString())
}

describe('verifyTwilioSignature on forms', () => {
  it.each([
    ['+14158675310', 'GvWf1cFY/Q7PnoempGyD5oXAezc='],
    ['+14158675309', 'RSOYDt4T1cUTdK1PDd93/VVr8B8='],
  ])("accepts Twilio's documented example (Caller %s)", (caller, signature) => {
    const form = docParams(caller)
    expect(twilioSignature(TOKEN, DOC_URL, form)).toBe(signature)
    const rawBody = formBody(form)
    expect(
      verifyTwilioSignature({
        authToken: TOKEN,
        url: DOC_URL,
        signature,
        rawBody,
        contentType: FORM,
      }),
    ).toEqual({ ok: true })
  })

  it('agrees with an independent implementation on awkward values', () => {
    const url = 'https://h.example/api/webhooks/sms?x=a+b&y=%20'
    const params = {
      Body: 'héllo wörld + 100% & more=yes 😀',
      From: '+15551230000',
      To: '+15559870000',
      empty: '',
      a: 'lower-case names sort after upper-case ones',
    }
    const signature = independentSignature('s3cret-token', url, params)
    expect(twilioSignature('s3cret-token', url, params)).toBe(signature)
    const result = verifyTwilioSignature({
      authToken: 's3cret-token',
      url,
      signature,
      rawBody: formBody(params),
      contentType: `${FORM}; charset=UTF-8`,
    })
    expect(result).toEqual({ ok: true })
  })

  it('reads the form from URLSearchParams, a record, or the raw body', () => {
    const form = docParams('+14158675310')
    const signature = 'GvWf1cFY/Q7PnoempGyD5oXAezc='
    const base = {
      authToken: TOKEN,
      url: DOC_URL,
      signature,
      contentType: FORM,
    }
    expect(verifyTwilioSignature({ ...base, form }).ok).toBe(true)
    expect(
      verifyTwilioSignature({ ...base, form: new URLSearchParams(form) }).ok,
    ).toBe(true)
    expect(verifyTwilioSignature({ ...base, rawBody: formBody(form) }).ok).toBe(
      true,
    )
  })

  it('signs every value of a repeated name, values sorted and distinct', () => {
    const url = 'https://h.example/hook'
    const rawBody = Buffer.from(
      'MediaUrl=https%3A%2F%2Fm%2Fb&From=%2B1555&MediaUrl=https%3A%2F%2Fm%2Fa' +
        '&MediaUrl=https%3A%2F%2Fm%2Fb',
    )
    const data =
      url + 'From+1555' + 'MediaUrlhttps://m/a' + 'MediaUrlhttps://m/b'
    const signature = createHmac('sha1', TOKEN).update(data).digest('base64')
    const options = { authToken: TOKEN, url, signature, contentType: FORM }
    expect(verifyTwilioSignature({ ...options, rawBody }).ok).toBe(true)
    expect(
      verifyTwilioSignature({
        ...options,
        form: { From: '+1555', MediaUrl: ['https://m/b', 'https://m/a'] },
      }).ok,
    ).toBe(true)
  })

  it('refuses a signature made over the first value of a repeated name only', () => {
    const url = 'https://h.example/hook'
    const form = { From: '+1555', MediaUrl: ['https://m/a', 'https://m/b'] }
    const signature = twilioSignature(TOKEN, url, {
      From: '+1555',
      MediaUrl: 'https://m/a',
    })
    expect(
      verifyTwilioSignature({
        authToken: TOKEN,
        url,
        signature,
        rawBody: formBody(form),
        contentType: FORM,
      }),
    ).toMatchObject({ ok: false, reason: 'signature_mismatch' })
  })

  describe('refuses forgeries', () => {
    const form: Record<string, string> = docParams('+14158675310')
    const signature = 'GvWf1cFY/Q7PnoempGyD5oXAezc='
    const valid: VerifyTwilioOptions = {
      authToken: TOKEN,
      url: DOC_URL,
      signature,
      form,
      rawBody: Buffer.from(JSON.stringify(form)),
      contentType: FORM,
    }
    const withoutDigits = Object.fromEntries(
      Object.entries(form).filter(([name]) => name !== 'Digits'),
    )

    it.each<[string, Partial<VerifyTwilioOptions>, TwilioFailure]>([
      ['another auth token', { authToken: '54321' }, 'signature_mismatch'],
      [
        'a changed parameter',
        { form: { ...form, Digits: '9' } },
        'signature_mismatch',
      ],
      [
        'an added parameter',
        { form: { ...form, Body: 'hi' } },
        'signature_mismatch',
      ],
      ['a removed parameter', { form: withoutDigits }, 'signature_mismatch'],
      [
        'another host',
        { url: 'https://evil.example/myapp.php?foo=1&bar=2' },
        'signature_mismatch',
      ],
      [
        'another path',
        { url: 'https://mycompany.com/x.php?foo=1&bar=2' },
        'signature_mismatch',
      ],
      [
        'another query',
        { url: 'https://mycompany.com/myapp.php?foo=2&bar=2' },
        'signature_mismatch',
      ],
      [
        'another scheme',
        { url: 'http://mycompany.com/myapp.php?foo=1&bar=2' },
        'signature_mismatch',
      ],
      [
        'a lower-cased signature',
        { signature: signature.toLowerCase() },
        'signature_mismatch',
      ],
      [
        'the body sent as JSON',
        { contentType: JSON_TYPE },
        'signature_mismatch',
      ],
    ])('with %s', (_, change, reason) => {
      const result = verifyTwilioSignature({ ...valid, ...change })
      expect(result).toMatchObject({ ok: false, reason })
    })
  })

  it.each([undefined, '', '   '])(
    'refuses signature %j as missing',
    (signature) => {
      expect(
        verifyTwilioSignature({
          authToken: TOKEN,
          url: DOC_URL,
          signature,
          form: {},
          contentType: FORM,
        }),
      ).toMatchObject({ ok: false, reason: 'missing_signature' })
    },
  )

  it.each([
    'not base64!',
    'GvWf1cFY/Q7PnoempGyD5oXAezc',
    'GvWf1cFY/Q7PnoempGyD5oXAezc=GvWf',
    'GvWf1cFY/Q7PnoempGyD5oXAezc=, GvWf1cFY/Q7PnoempGyD5oXAezc=',
    'R3ZXZjFjRlkvUTdQbm9lbXBHeUQ1b1hBZXpjPQ==',
  ])('refuses signature %j as malformed', (signature) => {
    expect(
      verifyTwilioSignature({
        authToken: TOKEN,
        url: DOC_URL,
        signature,
        form: docParams('+14158675310'),
        contentType: FORM,
      }),
    ).toMatchObject({ ok: false, reason: 'malformed_signature' })
  })

  it('needs form parameters or a raw body for a form', () => {
    expect(() =>
      verifyTwilioSignature({
        authToken: TOKEN,
        url: DOC_URL,
        signature: 'GvWf1cFY/Q7PnoempGyD5oXAezc=',
        contentType: FORM,
      }),
    ).toThrow(TypeError)
  })
})

describe('verifyTwilioSignature URL variants', () => {
  const form = { From: '+15551230000', Body: 'hi' }

  function accepts(signedUrl: string, receivedUrl: string): boolean {
    return verifyTwilioSignature({
      authToken: TOKEN,
      url: receivedUrl,
      signature: twilioSignature(TOKEN, signedUrl, form),
      form,
      contentType: FORM,
    }).ok
  }

  it('accepts a signature over the URL with or without the default port', () => {
    expect(
      accepts('https://h.example:443/hook?a=1', 'https://h.example/hook?a=1'),
    ).toBe(true)
    expect(
      accepts('https://h.example/hook?a=1', 'https://h.example:443/hook?a=1'),
    ).toBe(true)
    expect(accepts('http://h.example:80/hook', 'http://h.example/hook')).toBe(
      true,
    )
  })

  it('accepts a signature made without the port the server saw, as twilio-node does', () => {
    expect(
      accepts('https://h.example/hook', 'https://h.example:8443/hook'),
    ).toBe(true)
  })

  it('refuses a signature over a different explicit port', () => {
    expect(
      accepts('https://h.example:8443/hook', 'https://h.example:9443/hook'),
    ).toBe(false)
  })

  // As twilio-node does: the URL normalized by WHATWG rules escapes ' in
  // the query, and the legacy querystring form unescapes it again.
  it("accepts a query whose ' was escaped on one side only", () => {
    const plain = "https://h.example/hook?q=it's"
    const escaped = 'https://h.example/hook?q=it%27s'
    expect(accepts(plain, escaped)).toBe(true)
    expect(accepts(escaped, plain)).toBe(true)
  })

  it('refuses a query that differs in more than escaping', () => {
    expect(
      accepts(
        'https://h.example/hook?q=its',
        'https://h.example/hook?q=it%27s',
      ),
    ).toBe(false)
  })

  it('accepts an IPv6 host with and without its default port', () => {
    expect(accepts('http://[::1]:80/hook', 'http://[::1]/hook')).toBe(true)
    expect(accepts('http://[::1]/hook', 'http://[::1]:80/hook')).toBe(true)
  })

  it('checks the URL built by publicUrl from API_PUBLIC_URL', () => {
    const signedUrl = 'https://hooks.example.com/parley/api/webhooks/sms?x=1'
    const url = publicUrl('/api/webhooks/sms?x=1', {
      apiPublicUrl: 'https://hooks.example.com/parley/',
      hostHeader: '10.0.0.5:8080',
    })
    expect(accepts(signedUrl, url)).toBe(true)
    const direct = publicUrl('/api/webhooks/sms?x=1', {
      hostHeader: '10.0.0.5:8080',
    })
    expect(accepts(signedUrl, direct)).toBe(false)
  })
})

describe('verifyTwilioSignature on JSON bodies', () => {
  const body = Buffer.from('{"From":"+15551230000","Body":"hi"}')
  const base = 'http://127.0.0.1:8080/api/webhooks/sms'

  it('matches the body hash of Twilio’s documented JSON example', () => {
    const example = '{"CallSid":"CA1234567890ABCDE","Caller":"+12349013030"}'
    expect(twilioBodyHash(Buffer.from(example))).toBe(
      '5ccde7145dfb8f56479710896586cb9d5911809d83afbe34627818790db0aec9',
    )
  })

  it('accepts a URL signature whose bodySHA256 matches the raw body', () => {
    const hash = createHash('sha256').update(body).digest('hex')
    const url = `${base}?bodySHA256=${hash}`
    const signature = createHmac('sha1', TOKEN).update(url).digest('base64')
    expect(
      verifyTwilioSignature({
        authToken: TOKEN,
        url,
        signature,
        rawBody: body,
        contentType: 'application/json; charset=utf-8',
      }),
    ).toEqual({ ok: true })
  })

  it('signs with signTwilioRequest, which adds bodySHA256 to the URL', () => {
    const signed = signTwilioRequest({
      authToken: TOKEN,
      url: `${base}?a=1`,
      rawBody: body,
      contentType: JSON_TYPE,
    })
    expect(signed.url).toBe(`${base}?a=1&bodySHA256=${twilioBodyHash(body)}`)
    const options = { authToken: TOKEN, rawBody: body, contentType: JSON_TYPE }
    expect(verifyTwilioSignature({ ...options, ...signed }).ok).toBe(true)
  })

  it('refuses a body that does not match bodySHA256', () => {
    const signed = signTwilioRequest({
      authToken: TOKEN,
      url: base,
      rawBody: body,
      contentType: JSON_TYPE,
    })
    const tampered = Buffer.from('{"From":"+15551230000","Body":"HI"}')
    expect(
      verifyTwilioSignature({
        authToken: TOKEN,
        ...signed,
        rawBody: tampered,
        contentType: JSON_TYPE,
      }),
    ).toMatchObject({ ok: false, reason: 'body_hash_mismatch' })
  })

  it('refuses a bodySHA256 swapped for the hash of a forged body', () => {
    const signed = signTwilioRequest({
      authToken: TOKEN,
      url: base,
      rawBody: body,
      contentType: JSON_TYPE,
    })
    const forged = Buffer.from('{"From":"+15550000000","Body":"forged"}')
    const url = `${base}?bodySHA256=${twilioBodyHash(forged)}`
    expect(
      verifyTwilioSignature({
        authToken: TOKEN,
        url,
        signature: signed.signature,
        rawBody: forged,
        contentType: JSON_TYPE,
      }),
    ).toMatchObject({ ok: false, reason: 'signature_mismatch' })
  })

  it('refuses a validly signed URL that carries no bodySHA256', () => {
    expect(
      verifyTwilioSignature({
        authToken: TOKEN,
        url: base,
        signature: twilioSignature(TOKEN, base),
        rawBody: body,
        contentType: JSON_TYPE,
      }),
    ).toMatchObject({ ok: false, reason: 'missing_body_hash' })
  })

  it('refuses a JSON body signed as if it were form parameters', () => {
    const params = { From: '+15551230000', Body: 'hi' }
    const signed = signTwilioRequest({
      authToken: TOKEN,
      url: base,
      rawBody: body,
      contentType: JSON_TYPE,
    })
    expect(
      verifyTwilioSignature({
        authToken: TOKEN,
        url: signed.url,
        signature: twilioSignature(TOKEN, signed.url, params),
        rawBody: body,
        contentType: JSON_TYPE,
      }),
    ).toMatchObject({ ok: false, reason: 'signature_mismatch' })
  })

  it('needs the raw body', () => {
    expect(() =>
      verifyTwilioSignature({
        authToken: TOKEN,
        url: base,
        signature: twilioSignature(TOKEN, base),
        contentType: JSON_TYPE,
      }),
    ).toThrow(TypeError)
  })
})

describe('signTwilioRequest', () => {
  it('signs a form over the unchanged URL', () => {
    const form = docParams('+14158675310')
    expect(
      signTwilioRequest({
        authToken: TOKEN,
        url: DOC_URL,
        form,
        contentType: FORM,
      }),
    ).toEqual({ url: DOC_URL, signature: 'GvWf1cFY/Q7PnoempGyD5oXAezc=' })
  })

  it.each([
    'https://h.example/hook?bodySHA256=abc',
    'https://h.example/hook#fragment',
  ])('refuses to sign a JSON body for %s', (url) => {
    expect(() =>
      signTwilioRequest({
        authToken: TOKEN,
        url,
        rawBody: Buffer.from('{}'),
        contentType: JSON_TYPE,
      }),
    ).toThrow(TypeError)
  })
})
