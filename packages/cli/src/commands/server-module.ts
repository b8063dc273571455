import { CliError } from '../errors.js'

/** The `@parley/server` module. */
export type ServerModule = typeof import('@parley/server')

// Only the server package itself, by name or by its files (a workspace
// checkout that was not built). A package missing inside the server names
// the server only after "imported from" and is shown as is.
const serverNotFound =
  /^Cannot find (?:package|module) '[^']*@parley[\\/]server\b/

/**
 * Loads `@parley/server` when a command needs it (serve, migrate,
 * mock-provider), so that the other commands start fast and work without
 * it. A missing server is a `CliError` that says how to get it.
 */
export async function loadServer(): Promise<ServerModule> {
  try {
    return await import('@parley/server')
  } catch (error) {
    if (!isServerMissing(error)) throw error
    throw new CliError(
      'server_missing',
      '@parley/server is not installed (or not built): install it next to ' +
        '@parley/cli, or run `npm run build` in a checkout',
      { cause: error },
    )
  }
}

function isServerMissing(error: unknown): boolean {
  const { code, message } = (error ?? {}) as {
    code?: unknown
    message?: unknown
  }
  const notFound =
    code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND'
  return notFound && serverNotFound.test(String(message))
}
