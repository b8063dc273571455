/**
 * Every URL the CLI prints goes without its credentials: the userinfo
 * password and any query parameter named like a secret.
 */
import { describe, expect, it } from 'vitest'

import { redactCredentials, redactUrl } from '../src/format/redact-url.js'
import { deadServerUrl } from './fake-server.js'
import { assertBuilt, runCli } from './run-cli.js'

const secrets = ['hunter2', 's3cr3t', 'tok123', 'k-999', 'Pw0rd']

const credentialUrl =
  'postgres://parley:hunter2@127.0.0.1:1/parley?sslmode=disable' +
  '&PASSWORD=s3cr3t&access_token=tok123&api_key=k-999&sslpassword=Pw0rd'

describe('redactUrl', () => {
  it('masks the password and every secret-named parameter, whatever its case', () => {
    const redacted = redactUrl(credentialUrl)

    for (const secret of secrets) expect(redacted).not.toContain(secret)
    expect(redacted).toBe(
      'postgres://parley:***@127.0.0.1:1/parley?sslmode=disable' +
        '&PASSWORD=***&access_token=***&api_key=***&sslpassword=***',
    )
  })

  it('masks a fragment, which no server reads and may hold a secret', () => {
    const url = 'postgres://127.0.0.1:1/parley#password=FRAG%2Fs3cr3t'

    expect(redactUrl(url)).toBe('postgres://127.0.0.1:1/parley#***')
    expect(
      redactCredentials(`failed: ${url} (password=FRAG/s3cr3t)`, url),
    ).not.toMatch(/FRAG|s3cr3t/)
  })

  it('leaves URLs without credentials, and file paths, as they are', () => {
    expect(redactUrl('http://127.0.0.1:8080')).toBe('http://127.0.0.1:8080')
    expect(redactUrl('./data/parley.db')).toBe('./data/parley.db')
  })

  it('masks the credentials of a URL wherever a message quotes them', () => {
    const message = `connect failed for ${credentialUrl} (password "hunter2")`

    const redacted = redactCredentials(message, credentialUrl)

    for (const secret of secrets) expect(redacted).not.toContain(secret)
  })
})

describe('the bin never prints a credential of a URL it was given', () => {
  it('in migrate errors and in the no-server error', async () => {
    assertBuilt()
    const dead = new URL(await deadServerUrl())
    const apiUrl = `http://${dead.host}/?access_token=tok123`
    // A server URL with userinfo is refused before it is used or quoted.
    const userinfoUrl = `http://ann:hunter2@${dead.host}/?token=tok123`

    const results = await Promise.all([
      runCli(['migrate', '--database-url', credentialUrl]),
      runCli(['migrate', '--json'], { DATABASE_URL: credentialUrl }),
      runCli(['migrate', '--database-url', 'postgres://u:hunter2@/x?schema=A']),
      runCli(['conversations', '--url', apiUrl]),
      runCli(['metrics', '--url', apiUrl, '--json']),
      runCli(['conversations', '--url', userinfoUrl]),
      runCli(['metrics', '--url', userinfoUrl, '--json']),
    ])

    for (const [index, result] of results.entries()) {
      expect(result.code).not.toBe(0)
      // The third URL and the userinfo ones are refused before they are
      // quoted; the others are quoted masked.
      if (index !== 2 && index < 5) {
        expect(result.stderr + result.stdout).toMatch(/\*\*\*/)
      }
      for (const secret of secrets) {
        expect(result.stderr + result.stdout).not.toContain(secret)
      }
    }
    for (const result of results.slice(5)) {
      expect(result.code).toBe(2)
      expect(result.stderr).toContain('holds credentials')
    }
  })
})
