/** One entry point of a package and the API report that describes it. */
export interface EntryPoint {
  /** The package's name, e.g. `@parley/core`. */
  readonly name: string
  /** True for the package's `.` export. */
  readonly main: boolean
  /** The package's folder, absolute. */
  readonly folder: string
  /** The entry's `.d.ts`, relative to `folder`. */
  readonly entry: string
  /** The report's name: `etc/<report>.api.md`. */
  readonly report: string
}

/** Every entry point of every workspace, main entries first per package. */
export function entryPoints(): EntryPoint[]

/** Compares (or with `update`, rewrites) every report; resolves problems. */
export function checkApiReports(options?: {
  update?: boolean
}): Promise<string[]>

/** The same, for the given entry points. */
export function checkEntryPoints(
  entries: readonly EntryPoint[],
  options?: { update?: boolean },
): Promise<string[]>
