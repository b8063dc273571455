import { describe, expect, it } from 'vitest'
import {
  parsePublicBaseUrl,
  publicUrl,
} from '../src/http/security/public-url.js'

describe('publicUrl', () => {
  it('uses the Host header over plain HTTP when no public URL is set', () => {
    expect(
      publicUrl('/api/webhooks/sms?a=1', { hostHeader: '127.0.0.1:8080' }),
    ).toBe('http://127.0.0.1:8080/api/webhooks/sms?a=1')
  })

  it('uses https when the socket was TLS', () => {
    expect(
      publicUrl('/x', { hostHeader: 'api.example', protoFromSocket: 'https' }),
    ).toBe('https://api.example/x')
  })

  it('falls back to localhost without a Host header', () => {
    expect(publicUrl('/x', {})).toBe('http://localhost/x')
  })

  it('puts the request path after API_PUBLIC_URL, ignoring the Host', () => {
    const options = {
      apiPublicUrl: 'https://hooks.example.com',
      hostHeader: 'internal:8080',
      protoFromSocket: 'http' as const,
    }
    expect(publicUrl('/api/webhooks/sms?x=1&y=2', options)).toBe(
      'https://hooks.example.com/api/webhooks/sms?x=1&y=2',
    )
  })

  it('keeps the base path of API_PUBLIC_URL, with or without a slash', () => {
    for (const base of [
      'https://a.example/parley',
      'https://a.example/parley/',
    ]) {
      expect(publicUrl('/api/webhooks/sms', { apiPublicUrl: base })).toBe(
        'https://a.example/parley/api/webhooks/sms',
      )
    }
  })

  it('keeps a non-default port of API_PUBLIC_URL', () => {
    expect(publicUrl('/p', { apiPublicUrl: 'https://a.example:8443/' })).toBe(
      'https://a.example:8443/p',
    )
  })

  it('keeps the path and query byte for byte', () => {
    const target = "/api/webhooks/sms?q=it's%20a+b&x=%7E&x=2"
    expect(publicUrl(target, { hostHeader: 'h' })).toBe(`http://h${target}`)
  })

  it('takes only the path and query of an absolute-form target', () => {
    expect(
      publicUrl('http://evil.example/api/webhooks/sms?a=1', {
        hostHeader: 'h',
      }),
    ).toBe('http://h/api/webhooks/sms?a=1')
    expect(publicUrl('http://evil.example?a=1', { hostHeader: 'h' })).toBe(
      'http://h/?a=1',
    )
  })
})

describe('parsePublicBaseUrl', () => {
  it('returns the origin and the path without trailing slashes', () => {
    expect(parsePublicBaseUrl('https://A.Example:443/base//')).toBe(
      'https://a.example/base',
    )
    expect(parsePublicBaseUrl('http://a.example')).toBe('http://a.example')
  })

  it.each([
    ['not a URL', 'hooks.example.com'],
    ['another scheme', 'ftp://a.example/'],
    ['a query', 'https://a.example/?x=1'],
    ['a fragment', 'https://a.example/#top'],
  ])('refuses %s', (_, text) => {
    expect(() => parsePublicBaseUrl(text)).toThrow(RangeError)
  })

  it('refuses credentials without quoting them', () => {
    expect(() => parsePublicBaseUrl('https://user:s3cret@a.example/')).toThrow(
      /^(?!.*s3cret).*credentials/,
    )
  })
})
