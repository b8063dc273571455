/**
 * The packages as users get them: every workspace packed with `npm pack`,
 * installed offline into a fresh project, loaded with `import` and with
 * `require`, and linted with publint and Are the Types Wrong. Needs the
 * build (`npm test` builds first).
 */
import { execFile, execFileSync } from 'node:child_process'
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runDeno } from './deno-runner.js'
import { REPO_ROOT } from './helpers/server-process.js'
import {
  consumerLockfile,
  installedPackages,
  type Lockfile,
  type PackedWorkspace,
} from './packaging/consumer-lockfile.js'
import {
  installConsumer,
  packWorkspaces,
  registryUrl,
  repoLockfile,
} from './packaging/consumer-project.js'

const run = promisify(execFile)
const bin = (name: string) => join(REPO_ROOT, 'node_modules/.bin', name)
const DRIVERS = ['better-sqlite3', 'pg']

describe('the packed packages', () => {
  let folder: string
  let tarballs: string
  let app: string
  let packed: PackedWorkspace[]
  let lockfile: Lockfile

  beforeAll(async () => {
    folder = mkdtempSync(join(tmpdir(), 'parley-pack-'))
    tarballs = join(folder, 'tarballs')
    app = join(folder, 'app')
    packed = await packWorkspaces(tarballs)
    lockfile = await installConsumer(app, packed, ['better-sqlite3'])
    cpSync(join(REPO_ROOT, 'test/packaging/consumer'), app, {
      recursive: true,
    })
    cpSync(join(REPO_ROOT, 'examples/deno/main.ts'), join(app, 'deno.ts'))
  }, 120_000)

  afterAll(() => {
    if (folder !== undefined) rmSync(folder, { recursive: true, force: true })
  })

  it.each([
    ['import', 'esm.mjs'],
    ['require', 'cjs.cjs'],
  ])(
    'load with %s in a fresh project and send, receive and list',
    async (_how, script) => {
      const { stdout } = await run(process.execPath, [script], {
        cwd: app,
        timeout: 30_000,
      })
      const result = JSON.parse(stdout)

      expect(result.loaded).toEqual({
        core: 'function',
        sqlite: 'function',
        postgres: 'function',
        nodeSqlite: 'function',
        server: 'function',
        cli: 'function',
      })
      expect(result.sent).toBe('1')
      expect(result.conversations).toBe(1)
      expect(result.messages).toEqual(['Your order shipped', 'Thanks!'])
      expect(result.refused).toBe('validation_failed')
    },
  )

  it('type-check and run under Deno, as the Deno example uses them', async () => {
    const check = await runDeno('check', ['deno.ts'], { cwd: app })
    const run = await runDeno(
      'run',
      ['--allow-read', '--allow-write', '--allow-env', 'deno.ts'],
      { cwd: app },
    )

    expect(check.stderr).not.toMatch(/error/i)
    expect(check.code).toBe(0)
    expect(run.stdout).toMatch(
      /^conversations created 1, inbound processed 1$/m,
    )
    expect(run.code).toBe(0)
  })

  it('install the parley bin, which runs', async () => {
    const { stdout } = await run(join(app, 'node_modules/.bin/parley'), [
      '--version',
    ])

    expect(stdout.trim()).toBe(
      packed.find((p) => p.manifest.name === '@parley/cli')!.manifest.version,
    )
  })

  it('pass publint, warnings included', async () => {
    for (const { spec } of packed) {
      const tarball = spec.slice('file:'.length)
      const { stdout } = await run(bin('publint'), ['run', '--strict', tarball])

      expect(stdout).toMatch(/All good!/)
    }
  })

  it('have types that resolve like their code, for node16 ESM and CJS', async () => {
    // attw exits non-zero on any problem; node10 resolution (no `exports`
    // support) is out of scope for packages that need Node 20.
    const outputs = await Promise.all(
      packed.map(({ spec }) =>
        run(bin('attw'), [
          spec.slice('file:'.length),
          '--profile',
          'node16',
          '--format',
          'ascii',
        ]),
      ),
    )

    for (const { stdout } of outputs) {
      const verdicts = stdout.split('\n').filter((l) => /^node16 /.test(l))
      expect(verdicts.length).toBeGreaterThanOrEqual(2)
      for (const verdict of verdicts) {
        expect(verdict).toMatch(/: 🟢 \((CJS|ESM|JSON)\)$/u)
      }
    }
  }, 90_000)

  it('ship no source, tests or config beside the build', () => {
    for (const { spec } of packed) {
      const files = listTarball(spec.slice('file:'.length))

      const beside = files.filter((f) => !/^package\/(dist|bin)\//.test(f))
      expect(beside).toContain('package/package.json')
      expect(beside).toContain('package/LICENSE')
      for (const file of beside) {
        expect(file).toMatch(/^package\/(package\.json|README\.md|LICENSE)$/)
      }
      expect(files.some((file) => /\/(src|test)\//.test(file))).toBe(false)
    }
  })

  it('give a project that installs core neither database driver', async () => {
    const core = packed.filter((p) => p.manifest.name === '@parley/core')
    const coreOnly = consumerLockfile(
      'core-only',
      repoLockfile(),
      { workspaces: core, registry: [] },
      await registryUrl(),
    )

    expect(installedPackages(coreOnly).sort()).toEqual([
      '@parley/core',
      'ky',
      'kysely',
      'libphonenumber-js',
    ])
    expect(installedPackages(lockfile)).toEqual(expect.arrayContaining(DRIVERS))
  })
})

describe('every workspace package.json', () => {
  const manifests = ['core', 'server', 'cli'].map(
    (name) =>
      JSON.parse(
        readFileSync(join(REPO_ROOT, 'packages', name, 'package.json'), 'utf8'),
      ) as Record<string, unknown> & {
        exports: Record<string, unknown>
        dependencies?: Record<string, string>
      },
  )

  it.each(manifests.map((m) => [m.name as string, m] as const))(
    '%s declares engines, no side effects and typed import and require entries',
    (_name, manifest) => {
      expect(manifest.engines).toEqual({ node: '>=20' })
      expect(manifest.sideEffects).toBe(false)
      for (const [subpath, target] of Object.entries(manifest.exports)) {
        if (subpath === './package.json') continue
        const { import: esm, require: cjs } = target as Record<
          string,
          Record<string, string>
        >
        expect(esm?.types).toMatch(/\.d\.ts$/)
        expect(esm?.default).toMatch(/\.js$/)
        expect(cjs?.types).toMatch(/\.d\.cts$/)
        expect(cjs?.default).toMatch(/\.cjs$/)
      }
    },
  )

  it.each(manifests.map((m) => [m.name as string, m] as const))(
    '%s imports, in code and types, only its dependencies, peers and node: built-ins',
    (name, manifest) => {
      const folder = join(REPO_ROOT, 'packages', name.split('/')[1]!, 'dist')
      const allowed = new Set([
        name,
        ...Object.keys(manifest.dependencies ?? {}),
        ...Object.keys((manifest.peerDependencies as object) ?? {}),
      ])

      const imported = distImports(folder)
      expect(imported.size).toBeGreaterThan(0)
      for (const specifier of imported) {
        if (specifier.startsWith('node:')) continue
        expect({
          specifier,
          allowed: allowed.has(packageOf(specifier)),
        }).toEqual({ specifier, allowed: true })
      }
    },
  )

  it('core keeps the database drivers optional peers, out of dependencies', () => {
    const core = manifests.find((m) => m.name === '@parley/core')!

    expect(Object.keys(core.dependencies ?? {})).not.toEqual(
      expect.arrayContaining(['pg']),
    )
    for (const driver of DRIVERS) {
      expect(core.dependencies?.[driver]).toBeUndefined()
      expect(core.optionalDependencies).toBeUndefined()
      expect(core.peerDependencies).toHaveProperty(driver)
      expect(core.peerDependenciesMeta).toHaveProperty(
        [driver, 'optional'],
        true,
      )
    }
  })
})

// The bare specifiers a build's JavaScript and declarations import.
function distImports(folder: string): Set<string> {
  const found = new Set<string>()
  const pattern =
    /(?:\bfrom |\bimport\(|\brequire\(|^import )["']((?:node:|@[\w.-]+\/)?\w[\w.-]*(?:\/[\w./-]+)?)["']/gm
  for (const file of readdirSync(folder)) {
    if (!/\.(c?js|d\.c?ts)$/.test(file)) continue
    const text = readFileSync(join(folder, file), 'utf8')
    for (const [, specifier] of text.matchAll(pattern)) found.add(specifier!)
  }
  return found
}

// `@scope/name/sub` -> `@scope/name`; `name/sub` -> `name`.
function packageOf(specifier: string): string {
  const parts = specifier.split('/')
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!
}

function listTarball(tarball: string): string[] {
  return execFileSync('tar', ['tzf', tarball], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
}
