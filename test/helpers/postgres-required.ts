/**
 * For test files outside the storage suite's `postgres` project that need
 * Postgres (several processes on one database, LISTEN/NOTIFY): one probe
 * per file, and the same rule as the storage suite. Unreachable with
 * `CI=true` fails the file; otherwise one line says why its tests skip.
 */
import { inCi, POSTGRES_URL, probePostgres, where } from './postgres.js'

/**
 * Resolves undefined when Postgres answers, or the reason `what` is
 * skipped (printed once). Throws in CI when Postgres does not answer.
 *
 * @example
 * const skip = await postgresSkipReason('the multi-instance tests')
 * describe.skipIf(skip !== undefined)('two servers', () => { … })
 */
export async function postgresSkipReason(
  what: string,
): Promise<string | undefined> {
  const failure = await probePostgres(POSTGRES_URL)
  if (failure === undefined) return undefined
  const unreachable = `Postgres at ${where(POSTGRES_URL)} is unreachable (${failure})`
  if (inCi()) {
    throw new Error(
      `${unreachable}, and with CI=true ${what} must run: start Postgres ` +
        '(.ci/run does) or point PARLEY_TEST_POSTGRES_URL at one',
    )
  }
  const reason = `${unreachable}: skipping ${what} (set CI=true to make this an error)`
  console.warn(reason)
  return reason
}
