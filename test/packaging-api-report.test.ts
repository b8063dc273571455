/**
 * The public API reports (packages/<name>/etc/*.api.md, made by API
 * Extractor from the build's declarations) match the build, so that a
 * change of any package's public API fails until its report is updated
 * with `npm run api:update` and committed. Needs the build.
 */
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import {
  checkApiReports,
  checkEntryPoints,
  type EntryPoint,
} from '../scripts/api-report.mjs'
import { REPO_ROOT } from './helpers/server-process.js'

// A copy of core's build and report, inside the repository so that its
// declarations still find kysely in the root node_modules.
function copyOfCore(): EntryPoint & { dts: string } {
  const scratch = join(REPO_ROOT, '.vitest-tmp')
  mkdirSync(scratch, { recursive: true })
  const folder = mkdtempSync(join(scratch, 'api-'))
  for (const part of ['dist', 'etc', 'package.json']) {
    cpSync(join(REPO_ROOT, 'packages/core', part), join(folder, part), {
      recursive: true,
    })
  }
  copies.push(folder)
  const entry = 'dist/index.d.ts'
  const dts = join(folder, entry)
  return {
    name: '@parley/core',
    main: true,
    folder,
    entry,
    report: 'core',
    dts,
  }
}

const copies: string[] = []
afterAll(() => {
  for (const folder of copies) rmSync(folder, { recursive: true, force: true })
})

function edit(path: string, change: (text: string) => string): void {
  writeFileSync(path, change(readFileSync(path, 'utf8')))
}

describe('the API reports', () => {
  it('match the public API of every package as built', async () => {
    expect(await checkApiReports()).toEqual([])
  }, 60_000)

  it('fail when an export is added without updating the report', async () => {
    const core = copyOfCore()
    edit(
      core.dts,
      (text) =>
        `${text}\n/** Added behind the report's back. */\n` +
        'declare function addedExport(): void;\nexport { addedExport };\n',
    )

    const problems = await checkEntryPoints([core])

    expect(problems).toEqual([
      expect.stringMatching(
        /^core: the public API differs from etc\/core\.api\.md/,
      ),
    ])
  }, 60_000)

  it('fail when an export is removed without updating the report', async () => {
    const core = copyOfCore()
    edit(core.dts, (text) => text.replace(/\bsilentLogger, /, ''))

    const problems = await checkEntryPoints([core])

    expect(problems).toEqual([
      expect.stringMatching(
        /^core: the public API differs from etc\/core\.api\.md/,
      ),
    ])
  }, 60_000)

  it('fail when an export has no TSDoc', async () => {
    const core = copyOfCore()
    edit(
      core.dts,
      (text) =>
        `${text}\ndeclare function undocumented(): void;\n` +
        'export { undocumented };\n',
    )

    const problems = await checkEntryPoints([core], { update: true })

    expect(problems).toEqual([
      expect.stringMatching(
        /ae-undocumented\) Missing documentation for "undocumented"/,
      ),
    ])
  }, 60_000)
})
