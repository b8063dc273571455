/**
 * Starts the built Parley server (packages/server/dist/main.js through its
 * bin) in a process of its own, on a fresh SQLite file, with the settings
 * of a benchmark.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startServerProcess } from './processes.mjs'

/**
 * A fresh folder for one benchmark's databases and logs, removed when the
 * process exits (set PARLEY_BENCH_KEEP=1 to keep it for a look).
 */
export function scratchDir(name) {
  const dir = mkdtempSync(join(tmpdir(), `parley-bench-${name}-`))
  if (process.env.PARLEY_BENCH_KEEP !== '1') {
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }))
  }
  return dir
}

/**
 * Starts Parley with its defaults except where `env` says otherwise. The
 * per-IP limit is raised explicitly (every request of a benchmark comes
 * from 127.0.0.1); the per-sender limit, validation and idempotency stay
 * as they are by default.
 *
 * @param {object} options
 * @param {string} options.dir scratch folder
 * @param {string} options.name file stem of the database and the log
 * @param {Record<string, string>} [options.env]
 * @param {string[]} [options.nodeArgs]
 */
export function startParley(options) {
  return startServerProcess({
    script: 'packages/server/bin/parley-server.js',
    env: {
      DATABASE_URL: join(options.dir, `${options.name}.db`),
      API_RATE_LIMIT_PER_IP_PER_MIN: '1000000000',
      API_RATE_LIMIT_WEBHOOK_PER_IP_PER_MIN: '1000000000',
      ...options.env,
    },
    nodeArgs: options.nodeArgs,
    readyPath: '/readyz',
    logFile: join(options.dir, `${options.name}.log`),
  })
}
