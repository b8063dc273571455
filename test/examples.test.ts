/**
 * Every example in examples/ runs as documented (two-instances has its own
 * file, multi-instance-example.test.ts), and every code snippet of
 * docs/library.md is a region of one of them, verbatim. Needs the build.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { runDeno } from './deno-runner.js'
import { type FreshSchema, freshSchema } from './helpers/postgres.js'
import { postgresSkipReason } from './helpers/postgres-required.js'
import { REPO_ROOT } from './helpers/server-process.js'

const run = promisify(execFile)
const skipPostgres = await postgresSkipReason(
  'the custom-provider example on Postgres',
)

function runExample(
  path: string,
  args: readonly string[] = [],
  env: Readonly<Record<string, string>> = {},
) {
  return run(process.execPath, [join(REPO_ROOT, path), ...args], {
    cwd: REPO_ROOT,
    timeout: 30_000,
    env: { ...process.env, ...env },
  })
}

describe('examples', () => {
  it('embeds core in a node:http app that sends, refuses, receives and lists', async () => {
    const { stdout } = await runExample('examples/embed-node-http/index.mjs', [
      '--self-test',
    ])

    expect(stdout).toMatch(/^send 202 \{"id":"1","conversationId":"1"/m)
    expect(stdout).toMatch(/^refused 400 validation_failed 2$/m)
    expect(stdout).toMatch(/^garbled 400 invalid_json$/m)
    expect(stdout).toMatch(/^conversations 1 messages 2$/m)
  })

  it('delivers through a custom provider, retrying its 503', async () => {
    const { stdout } = await runExample('examples/custom-provider/index.mjs')

    expect(stdout).toBe(
      'message 1: sent after 2 attempts through relay as relay-1\n',
    )
  })

  describe.skipIf(skipPostgres !== undefined)('on Postgres', () => {
    let schema: FreshSchema | undefined
    afterAll(() => schema?.drop())

    it('delivers through a custom provider with Postgres storage', async () => {
      schema = await freshSchema()
      const { stdout } = await runExample(
        'examples/custom-provider/index.mjs',
        [],
        { DATABASE_URL: schema.databaseUrl },
      )

      expect(stdout).toBe(
        'message 1: sent after 2 attempts through relay as relay-1\n',
      )
    })
  })

  describe('under Deno', () => {
    const folder = mkdtempSync(join(tmpdir(), 'parley-deno-example-'))
    afterAll(() => rmSync(folder, { recursive: true, force: true }))

    it('sends, receives, lists and reads metrics on node:sqlite', async () => {
      const run = await runDeno('run', [
        '--allow-read',
        '--allow-write',
        '--allow-env',
        'examples/deno/main.ts',
        join(folder, 'parley.db'),
      ])

      expect(run.stderr).toBe('')
      expect(run.stdout).toBe(
        [
          'queued message 1 in conversation 1',
          'reply accepted (duplicate: false)',
          'email:ann@example.com<->shop@example.com: 2 messages',
          '  outbound Shop <shop@example.com>: It is on its way.',
          '  inbound Ann <ann+orders@example.com>: Thank you!',
          'conversations created 1, inbound processed 1',
          '',
        ].join('\n'),
      )
      expect(run.code).toBe(0)
    })
  })
})

// docs/library.md marks each code block with the region it shows:
// <!-- snippet: examples/deno/main.ts#send --> just above the fence.
const SNIPPET =
  /<!-- snippet: ([^#\s]+)#([\w-]+) -->\n\n?```(\w+)\n([\s\S]*?)```/g
const FENCE = /^```(\w*)$/gm

function region(file: string, name: string): string | undefined {
  const text = readFileSync(join(REPO_ROOT, file), 'utf8')
  const match = new RegExp(
    `^\\s*// #region ${name}\\n([\\s\\S]*?)^\\s*// #endregion ${name}$`,
    'm',
  ).exec(text)
  return match?.[1]
}

describe('docs/library.md', () => {
  const doc = readFileSync(join(REPO_ROOT, 'docs/library.md'), 'utf8')
  const snippets = [...doc.matchAll(SNIPPET)].map(([, file, name, , code]) => ({
    file: file!,
    name: name!,
    code: code!,
  }))

  it('shows code only from regions of the examples, verbatim', () => {
    expect(snippets.length).toBeGreaterThanOrEqual(8)
    for (const { file, name, code } of snippets) {
      expect(file).toMatch(/^examples\//)
      expect({ file, name, code: region(file, name) }).toEqual({
        file,
        name,
        code,
      })
    }
  })

  it('has no code block that is not such a snippet, shell commands aside', () => {
    const fences = [...doc.matchAll(FENCE)]
    const opening = fences.filter((_, index) => index % 2 === 0)
    const code = opening.filter(([, lang]) => !['sh', 'text'].includes(lang!))

    expect(code).toHaveLength(snippets.length)
  })
})
