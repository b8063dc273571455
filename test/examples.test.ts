/**
 * Every example in examples/ runs as documented.
 */
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { REPO_ROOT } from './helpers/server-process.js'

const run = promisify(execFile)

describe('examples', () => {
  it('embeds core in a node:http app that sends, receives and lists', async () => {
    const script = join(REPO_ROOT, 'examples/embed-node-http/index.mjs')
    const { stdout } = await run(process.execPath, [script, '--self-test'], {
      cwd: REPO_ROOT,
      timeout: 30_000,
    })

    expect(stdout).toMatch(/^send 202 \{"id":"1","conversationId":"1"/m)
    expect(stdout).toMatch(/^conversations 1 messages 2$/m)
  })
})
