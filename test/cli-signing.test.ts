/**
 * `parley receive` signs test webhooks with the secrets the server checks.
 */
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import {
  cleanUpServers,
  REPO_ROOT,
  startServerProcess,
} from './helpers/server-process.js'

afterAll(cleanUpServers)

const run = promisify(execFile)
const BIN = join(REPO_ROOT, 'packages/cli/dist/bin.js')
const SECRETS = {
  WEBHOOK_SMS_AUTH_TOKEN: 'twilio-test-token-0123456789',
  WEBHOOK_EMAIL_SECRET:
    'whsec_' + Buffer.from('a'.repeat(32)).toString('base64'),
}

async function receive(url: string, kind: string, env: Record<string, string>) {
  const args = [BIN, 'receive', kind, '--url', url, '--json']
  const fields =
    kind === 'email'
      ? ['--from', 'bob@example.com', '--to', 'ann@example.com']
      : ['--from', '+12025550123', '--to', '+18045551234']
  const clean = { PATH: process.env.PATH ?? '', ...env }
  return run(process.execPath, [...args, ...fields, '--body', 'hi'], {
    env: clean,
  }).then(
    (done) => ({ code: 0, stdout: done.stdout, stderr: done.stderr }),
    (failed: { code: number; stdout: string; stderr: string }) => failed,
  )
}

describe('parley receive against a server that checks signatures', () => {
  it('signs SMS and email webhooks with the configured secrets, and is refused without them', async () => {
    const server = await startServerProcess({ env: SECRETS })

    for (const kind of ['sms', 'email']) {
      const signed = await receive(server.url, kind, SECRETS)
      expect(signed.code, signed.stderr).toBe(0)
      expect(JSON.parse(signed.stdout)).toMatchObject({ status: 'accepted' })

      const unsigned = await receive(server.url, kind, {})
      expect(unsigned.code).toBe(1)
      expect(unsigned.stderr).toContain('unauthorized')
    }
  })
})
