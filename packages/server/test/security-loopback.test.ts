import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  publicUrl,
  signStandardWebhook,
  signTwilioRequest,
  verifyStandardWebhook,
  verifyTwilioSignature,
} from '../src/http/security/signatures.js'

const TOKEN = 'loopback-auth-token'
const SECRET =
  'whsec_' + Buffer.from('loopback-secret-24-bytes').toString('base64')

// A bare node:http server that checks signatures the way the app will:
// the URL rebuilt from the Host header and request.url, the raw body.
async function verdict(request: IncomingMessage): Promise<object> {
  const chunks: Buffer[] = []
  for await (const chunk of request) chunks.push(chunk as Buffer)
  const rawBody = Buffer.concat(chunks)
  if (request.url?.startsWith('/email')) {
    return verifyStandardWebhook({
      secret: SECRET,
      headers: request.headers,
      rawBody,
    })
  }
  const url = publicUrl(request.url ?? '/', {
    hostHeader: request.headers.host,
  })
  return verifyTwilioSignature({
    authToken: TOKEN,
    url,
    signature: request.headers['x-twilio-signature'] as string | undefined,
    rawBody,
    contentType: request.headers['content-type'],
  })
}

describe('signatures over a real loopback connection', () => {
  let server: Server
  let base: string

  beforeAll(async () => {
    server = createServer((request, response) => {
      void verdict(request).then((result) => {
        response.setHeader('content-type', 'application/json')
        response.end(JSON.stringify(result))
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve))
  })

  async function post(
    url: string,
    body: string,
    headers: Record<string, string>,
  ) {
    const response = await fetch(url, { method: 'POST', body, headers })
    return (await response.json()) as { ok: boolean; reason?: string }
  }

  it('accepts a Twilio-signed JSON body sent to the returned URL', async () => {
    const body = '{"from":"+15551230000","body":"hi"}'
    const contentType = 'application/json'
    const signed = signTwilioRequest({
      authToken: TOKEN,
      url: `${base}/api/webhooks/sms`,
      rawBody: Buffer.from(body),
      contentType,
    })
    const headers = {
      'content-type': contentType,
      'x-twilio-signature': signed.signature,
    }
    expect(await post(signed.url, body, headers)).toEqual({ ok: true })
    expect(
      await post(signed.url, body.replace('hi', 'ho'), headers),
    ).toMatchObject({
      ok: false,
      reason: 'body_hash_mismatch',
    })
  })

  it('accepts a Twilio-signed form with a repeated name', async () => {
    const form = new URLSearchParams([
      ['From', '+15551230000'],
      ['MediaUrl0', 'https://m.example/b'],
      ['MediaUrl0', 'https://m.example/a'],
      ['Body', 'héllo + wörld'],
    ])
    const contentType = 'application/x-www-form-urlencoded'
    const url = `${base}/api/webhooks/sms?source=test`
    const signed = signTwilioRequest({
      authToken: TOKEN,
      url,
      form,
      contentType,
    })
    const headers = {
      'content-type': contentType,
      'x-twilio-signature': signed.signature,
    }
    expect(await post(signed.url, form.toString(), headers)).toEqual({
      ok: true,
    })
    expect(await post(`${url}&x=1`, form.toString(), headers)).toMatchObject({
      ok: false,
      reason: 'signature_mismatch',
    })
  })

  it('accepts a Standard Webhooks signature and refuses a replayed old one', async () => {
    const body = '{"from":"a@example.com","to":"b@example.com"}'
    const fresh = signStandardWebhook({ secret: SECRET, rawBody: body })
    expect(await post(`${base}/email`, body, fresh)).toEqual({ ok: true })
    const old = signStandardWebhook({
      secret: SECRET,
      rawBody: body,
      timestamp: Math.floor(Date.now() / 1000) - 301,
    })
    expect(await post(`${base}/email`, body, old)).toMatchObject({
      ok: false,
      reason: 'stale_timestamp',
    })
  })
})
