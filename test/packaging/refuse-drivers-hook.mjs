// Module resolution hook (registered by load-without-drivers.mjs): any
// attempt to resolve a database driver fails, naming the driver and the
// module that asked for it, so an import that succeeds provably loaded
// neither.
const DRIVERS = new Set(['better-sqlite3', 'pg'])

export async function resolve(specifier, context, nextResolve) {
  if (DRIVERS.has(specifier)) {
    const error = new Error(
      `driver ${specifier} resolved from ${context.parentURL}`,
    )
    error.code = 'ERR_PARLEY_DRIVER_RESOLVED'
    throw error
  }
  return nextResolve(specifier, context)
}
