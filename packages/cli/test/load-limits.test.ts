/**
 * `parley load` against a server with a small per-client limit (the 429s
 * are counted, and the error says which limits to raise) and webhook
 * signature checks (load signs webhooks as `parley receive` does).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import {
  cleanUpServers,
  type ServerProcess,
  startServerProcess,
} from '../../../test/helpers/server-process.js'
import { assertBuilt, runCli } from './run-cli.js'

let server: ServerProcess

const secrets = {
  WEBHOOK_SMS_AUTH_TOKEN: 'twilio-test-token-0123456789',
  WEBHOOK_EMAIL_SECRET:
    'whsec_' + Buffer.from('b'.repeat(32)).toString('base64'),
}

beforeAll(async () => {
  assertBuilt()
  server = await startServerProcess({
    withoutBulkLimits: true,
    env: { API_RATE_LIMIT_PER_IP_PER_MIN: '5', ...secrets },
  })
})

afterAll(cleanUpServers)

describe('parley load against rate limits', () => {
  it('counts 429s by status, still prints the summary, and says which limit to raise', async () => {
    const result = await runCli([
      'load',
      '--url',
      server.url,
      '--count',
      '12',
      '--concurrency',
      '1',
      '--no-wait',
      '--json',
    ])

    expect(result.code).toBe(1)
    const summary = JSON.parse(result.stdout)
    expect(summary.requests).toMatchObject({
      sent: 12,
      accepted: 5,
      rejected: 7,
      rejected_by_status: { '429': 7 },
      rejection_samples: { '429': expect.stringMatching(/^rate_limited: /) },
    })
    expect(summary.server).toBeNull()
    expect(result.stderr).toMatch(
      /\nerror: 7 requests were rate limited \(429\)\. .*API_RATE_LIMIT_PER_IP_PER_MIN=1000000 \(default 120\)/,
    )
  })

  it('hints at the limits when a single send is rate limited', async () => {
    const result = await runCli([
      'send',
      'sms',
      '--url',
      server.url,
      '--from',
      '+15550001111',
      '--to',
      '+15550002222',
      '--body',
      'one too many',
    ])

    expect(result.code).toBe(1)
    expect(result.stderr).toMatch(
      /^error: rate_limited: .*\nhint: wait \d+ s and run it again; .*API_RATE_LIMIT_PER_IP_PER_MIN/,
    )
  })

  it('signs its webhooks with the secrets in the environment', async () => {
    const args = ['load', '--url', server.url, '--count', '4']
    const webhooks = [...args, '--traffic', 'webhooks', '--no-wait', '--json']

    const signed = await runCli(webhooks, secrets)
    const unsigned = await runCli(webhooks)

    expect(signed.code, signed.stderr).toBe(0)
    expect(JSON.parse(signed.stdout).requests.accepted).toBe(4)
    expect(unsigned.code).toBe(1)
    expect(JSON.parse(unsigned.stdout).requests.rejected_by_status).toEqual({
      '401': 4,
    })
    expect(unsigned.stderr).toContain(
      'error: 4 of 4 requests were not accepted; see the summary',
    )
  })
})
