/**
 * A package-lock.json for a project that installs Parley's packed tarballs,
 * made from the repository's own lock file: every registry package keeps
 * the version and integrity the repository installed, so `npm ci
 * --offline` takes them from the npm cache without asking the registry for
 * any package list (npm has no such list cached after `npm ci`).
 *
 * The tree is walked the way npm builds one: dependencies, optional
 * dependencies and the peer dependencies not marked optional, each found
 * where Node would find it from its dependent's folder.
 */

/** One package of a lock file (the fields this module reads or writes). */
export interface LockEntry {
  name?: string
  version?: string
  resolved?: string
  integrity?: string
  link?: boolean
  license?: string
  dev?: boolean
  devOptional?: boolean
  optional?: boolean
  peer?: boolean
  dependencies?: Record<string, string>
  optionalDependencies?: Record<string, string>
  peerDependencies?: Record<string, string>
  peerDependenciesMeta?: Record<string, { optional?: boolean }>
  [field: string]: unknown
}

/** A lock file of version 3. */
export interface Lockfile {
  name: string
  lockfileVersion: 3
  requires: true
  packages: Record<string, LockEntry>
}

/** A workspace package packed into a tarball. */
export interface PackedWorkspace {
  /** Its folder in the repository, e.g. `packages/core`. */
  readonly folder: string
  /** Its package.json, as packed. */
  readonly manifest: LockEntry & { name: string; version: string }
  /** Where the consumer's package.json points: `file:…/x.tgz`. */
  readonly spec: string
  /** The tarball's `sha512-…` integrity, as `npm pack --json` reports. */
  readonly integrity: string
}

/** What the consumer project depends on directly. */
export interface ConsumerRoots {
  /** Workspace packages, by tarball. */
  readonly workspaces: readonly PackedWorkspace[]
  /** Registry packages, at the version the repository locked. */
  readonly registry: readonly string[]
}

/**
 * The lock file of a consumer project named `name` whose dependencies are
 * `roots`, from the repository's lock file `repo`. Throws when a package
 * the tree needs is missing from `repo`.
 */
export function consumerLockfile(
  name: string,
  repo: Lockfile,
  roots: ConsumerRoots,
  registryUrl: string,
): Lockfile {
  const tree = new ConsumerTree(repo, roots.workspaces, registryUrl)
  const dependencies: Record<string, string> = {}
  for (const workspace of roots.workspaces) {
    dependencies[workspace.manifest.name] = workspace.spec
  }
  for (const pkg of roots.registry) {
    dependencies[pkg] = tree.lockedVersion(pkg)
  }
  tree.add('', '', { dependencies })
  return {
    name,
    lockfileVersion: 3,
    requires: true,
    packages: { '': { name, dependencies }, ...tree.packages },
  }
}

/** Every package a lock file installs, by name (nested ones included). */
export function installedPackages(lockfile: Lockfile): string[] {
  const folder = 'node_modules/'
  return Object.keys(lockfile.packages)
    .filter((path) => path !== '')
    .map((path) => path.slice(path.lastIndexOf(folder) + folder.length))
}

class ConsumerTree {
  readonly packages: Record<string, LockEntry> = {}
  readonly #byName: Map<string, PackedWorkspace>

  constructor(
    private readonly repo: Lockfile,
    workspaces: readonly PackedWorkspace[],
    private readonly registryUrl: string,
  ) {
    this.#byName = new Map(workspaces.map((w) => [w.manifest.name, w]))
  }

  lockedVersion(name: string): string {
    const version = this.repo.packages[`node_modules/${name}`]?.version
    if (version === undefined) {
      throw new Error(`package-lock.json has no node_modules/${name}`)
    }
    return version
  }

  // Adds the dependencies of the package at `consumerPath`, which sits at
  // `repoPath` in the repository's tree, then theirs.
  add(consumerPath: string, repoPath: string, entry: LockEntry): void {
    for (const [dependency, optional] of edges(entry)) {
      this.#addOne(consumerPath, repoPath, dependency, optional)
    }
  }

  #addOne(
    consumerPath: string,
    repoPath: string,
    dependency: string,
    optional: boolean,
  ): void {
    const workspace = this.#byName.get(dependency)
    if (workspace !== undefined) {
      this.#addWorkspace(workspace)
      return
    }
    const found = this.#find(repoPath, dependency)
    if (found === undefined) {
      if (optional) return
      throw new Error(
        `package-lock.json has no ${dependency} reachable from ` +
          `${repoPath || 'the root'} (needed by ${consumerPath || 'the root'})`,
      )
    }
    const target = consumerLocation(found, this.#byName.values())
    if (target in this.packages) return
    this.packages[target] = this.#registryEntry(found, dependency, optional)
    this.add(target, found, this.repo.packages[found]!)
  }

  #addWorkspace(workspace: PackedWorkspace): void {
    const target = `node_modules/${workspace.manifest.name}`
    if (target in this.packages) return
    const { manifest } = workspace
    this.packages[target] = {
      version: manifest.version,
      resolved: workspace.spec,
      integrity: workspace.integrity,
      ...pick(manifest, [
        'license',
        'bin',
        'engines',
        'dependencies',
        'optionalDependencies',
        'peerDependencies',
        'peerDependenciesMeta',
      ]),
    }
    this.add(target, workspace.folder, manifest)
  }

  // Where Node would find `dependency` from a package at `repoPath`: its
  // own node_modules, then each enclosing one up to the root's.
  #find(repoPath: string, dependency: string): string | undefined {
    let folder = repoPath
    for (;;) {
      const candidate = `${folder === '' ? '' : `${folder}/`}node_modules/${dependency}`
      const entry = this.repo.packages[candidate]
      if (entry !== undefined && entry.link !== true) return candidate
      if (folder === '') return undefined
      folder = parentFolder(folder)
    }
  }

  #registryEntry(
    repoPath: string,
    dependency: string,
    optional: boolean,
  ): LockEntry {
    // The repository's dev and peer flags say nothing about the consumer.
    const entry = { ...this.repo.packages[repoPath]! }
    for (const flag of ['dev', 'devOptional', 'peer', 'optional']) {
      delete entry[flag]
    }
    const file = dependency.slice(dependency.indexOf('/') + 1)
    return {
      ...entry,
      resolved: `${this.registryUrl}${dependency}/-/${file}-${entry.version}.tgz`,
      ...(optional ? { optional: true } : {}),
    }
  }
}

// A package's dependencies with whether each may be missing; peers marked
// optional are left out, as npm leaves them out.
function edges(entry: LockEntry): (readonly [string, boolean])[] {
  const optionalPeer = (name: string) =>
    entry.peerDependenciesMeta?.[name]?.optional === true
  return [
    ...Object.keys(entry.dependencies ?? {}).map((n) => [n, false] as const),
    ...Object.keys(entry.optionalDependencies ?? {}).map(
      (n) => [n, true] as const,
    ),
    ...Object.keys(entry.peerDependencies ?? {})
      .filter((n) => !optionalPeer(n))
      .map((n) => [n, false] as const),
  ]
}

// `node_modules/a/node_modules/b` -> `node_modules/a`;
// `packages/cli` -> ``.
function parentFolder(folder: string): string {
  const at = folder.lastIndexOf('/node_modules/')
  if (at >= 0) return folder.slice(0, at)
  return ''
}

// A package nested under a workspace folder in the repository sits under
// that workspace's folder in the consumer's node_modules.
function consumerLocation(
  repoPath: string,
  workspaces: Iterable<PackedWorkspace>,
): string {
  for (const { folder, manifest } of workspaces) {
    if (repoPath.startsWith(`${folder}/`)) {
      return `node_modules/${manifest.name}${repoPath.slice(folder.length)}`
    }
  }
  return repoPath
}

function pick(entry: LockEntry, fields: readonly string[]): LockEntry {
  return Object.fromEntries(
    fields.filter((f) => entry[f] !== undefined).map((f) => [f, entry[f]]),
  )
}
