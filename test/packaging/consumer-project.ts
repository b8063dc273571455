/**
 * Packs every workspace with `npm pack` and installs the tarballs into a
 * fresh project in a temporary folder, offline, as a user of the published
 * packages would get them.
 */
import { execFile } from 'node:child_process'
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { REPO_ROOT } from '../helpers/server-process.js'
import {
  consumerLockfile,
  type LockEntry,
  type Lockfile,
  type PackedWorkspace,
} from './consumer-lockfile.js'

const run = promisify(execFile)

/** The workspaces, as the root package.json lists them. */
export function workspaceFolders(): string[] {
  const root = readJson(join(REPO_ROOT, 'package.json')) as {
    workspaces: string[]
  }
  return root.workspaces
}

/** The repository's package-lock.json. */
export function repoLockfile(): Lockfile {
  return readJson(join(REPO_ROOT, 'package-lock.json')) as Lockfile
}

/**
 * Packs every workspace into `destination` (scripts off: the packages are
 * built already) and describes each tarball.
 */
export async function packWorkspaces(
  destination: string,
): Promise<PackedWorkspace[]> {
  const folders = workspaceFolders()
  mkdirSync(destination, { recursive: true })
  const { stdout } = await run(
    'npm',
    [
      'pack',
      '--json',
      '--ignore-scripts',
      `--pack-destination=${destination}`,
      ...folders.map((folder) => `--workspace=${folder}`),
    ],
    { cwd: REPO_ROOT, maxBuffer: 32 * 1024 * 1024 },
  )
  const packed = JSON.parse(stdout) as { filename: string; integrity: string }[]
  return folders.map((folder, index) => ({
    folder,
    manifest: readJson(join(REPO_ROOT, folder, 'package.json')) as LockEntry & {
      name: string
      version: string
    },
    spec: `file:${join(destination, packed[index]!.filename)}`,
    integrity: packed[index]!.integrity,
  }))
}

/** The registry URL npm uses, ending in `/`. */
export async function registryUrl(): Promise<string> {
  const { stdout } = await run('npm', ['config', 'get', 'registry'])
  const url = stdout.trim()
  return url.endsWith('/') ? url : `${url}/`
}

/**
 * Writes a consumer project into `folder` that depends on `workspaces`
 * and on the registry packages `registry`, and installs it with
 * `npm ci --offline`. Install scripts are off: better-sqlite3 would
 * compile its addon for about a minute, so the consumer gets the addon
 * the repository built for the same better-sqlite3 version (the lock file
 * pins it) and the same Node.
 */
export async function installConsumer(
  folder: string,
  workspaces: readonly PackedWorkspace[],
  registry: readonly string[],
): Promise<Lockfile> {
  const lockfile = consumerLockfile(
    'parley-consumer',
    repoLockfile(),
    { workspaces, registry },
    await registryUrl(),
  )
  const manifest = {
    name: 'parley-consumer',
    private: true,
    dependencies: lockfile.packages['']!.dependencies,
  }
  mkdirSync(folder, { recursive: true })
  writeJson(join(folder, 'package.json'), manifest)
  writeJson(join(folder, 'package-lock.json'), lockfile)
  await run(
    'npm',
    ['ci', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'],
    { cwd: folder, timeout: 90_000 },
  )
  if ('node_modules/better-sqlite3' in lockfile.packages) {
    linkBuiltAddon(folder)
  }
  return lockfile
}

const ADDON = 'node_modules/better-sqlite3/build/Release/better_sqlite3.node'

function linkBuiltAddon(folder: string): void {
  mkdirSync(join(folder, ADDON, '..'), { recursive: true })
  copyFileSync(join(REPO_ROOT, ADDON), join(folder, ADDON))
}

function readJson(path: string): unknown {
  return JSON.parse(readFileSync(path, 'utf8'))
}

function writeJson(path: string, value: unknown): void {
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`)
}
