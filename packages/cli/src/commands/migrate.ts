import { Option, type Command } from 'commander'

import { CliError, UsageError } from '../errors.js'
import { formatJson } from '../format/json.js'
import { toPrintable } from '../format/printable.js'
import { redactCredentials, redactUrl } from '../format/redact-url.js'
import { outColors, type CliOutput } from '../output.js'
import { example } from './help-text.js'
import { loadServer } from './server-module.js'

interface MigrateOptions {
  databaseUrl: string
  json?: boolean
}

type StorageConfig = ReturnType<
  Awaited<ReturnType<typeof loadServer>>['loadConfig']
>['storage']

/** What `parley migrate --json` prints. */
interface MigrateReport {
  /** `sqlite` or `postgres`. */
  dialect: StorageConfig['kind']
  /** The database, without a password. */
  database: string
  /** The migrations applied by this run, in order; empty when up to date. */
  applied: string[]
}

/** Registers `parley migrate` on the program. */
export function registerMigrateCommand(
  program: Command,
  output: CliOutput,
): void {
  program
    .command('migrate')
    .description('bring the database schema up to date')
    .addOption(
      new Option(
        '--database-url <url>',
        'a SQLite file path, or a postgres:// URL (with ?schema= to pick a schema)',
      )
        .env('DATABASE_URL')
        .default('./data/parley.db'),
    )
    .option('--json', 'print what was applied as JSON')
    .addHelpText(
      'after',
      '\nThe server migrates at start too; run this first to migrate before a\n' +
        'deploy, or to see what a new version will change. It is safe to run\n' +
        'while servers are running and to run again.\n' +
        example(
          '$ parley migrate --database-url ./data/parley.db\n' +
            '$ DATABASE_URL=postgres://parley@db.internal/parley parley migrate',
        ),
    )
    .action((options: MigrateOptions) => migrate(options, output))
}

async function migrate(
  options: MigrateOptions,
  output: CliOutput,
): Promise<void> {
  const storage = await readStorage(options.databaseUrl)
  const applied = await applyMigrations(storage)
  const report: MigrateReport = {
    dialect: storage.kind,
    database: describeDatabase(storage),
    applied,
  }

  output.out(options.json ? formatJson(report) : formatReport(report, output))
}

// The server's own reading of DATABASE_URL (schemes, `?schema=`, the
// SQLite options), given only the variables storage needs, so that an
// unrelated bad variable cannot stop a migration.
async function readStorage(databaseUrl: string): Promise<StorageConfig> {
  // An empty DATABASE_URL would quietly mean the default file.
  if (databaseUrl.trim() === '') {
    throw new UsageError(
      '--database-url (or DATABASE_URL) is empty: give a SQLite file path ' +
        'or a postgres:// URL',
    )
  }
  const { loadConfig, ConfigError } = await loadServer()
  const env = {
    DATABASE_URL: databaseUrl,
    API_SQLITE_SYNCHRONOUS: process.env.API_SQLITE_SYNCHRONOUS,
  }
  try {
    return loadConfig(env).storage
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    // The server's message names the variable at fault.
    const message = redactCredentials(error.message, databaseUrl)
    throw new UsageError(
      message.startsWith('DATABASE_URL')
        ? `bad --database-url (${message})`
        : `bad configuration: ${message}`,
    )
  }
}

async function applyMigrations(storage: StorageConfig): Promise<string[]> {
  const { migrateToLatest } = await import('@parley/core')
  const db = await openDatabase(storage)
  try {
    return await migrateToLatest(db)
  } catch (error) {
    const reason = reasonOf(error, storage)
    throw new CliError(
      'migration_failed',
      `cannot migrate ${describeDatabase(storage)}: ${reason}`,
      { cause: error },
    )
  } finally {
    await db.close()
  }
}

async function openDatabase(storage: StorageConfig) {
  try {
    if (storage.kind === 'sqlite') {
      const { openSqlite } = await import('@parley/core/sqlite')
      return openSqlite({
        filename: storage.filename,
        synchronous: storage.synchronous,
      })
    }
    const { openPostgres } = await import('@parley/core/postgres')
    return openPostgres({
      connectionString: storage.connectionString,
      schema: storage.schema,
      poolMax: 1,
    })
  } catch (error) {
    const reason = reasonOf(error, storage)
    throw new CliError(
      'migration_failed',
      `cannot open ${describeDatabase(storage)}: ${reason}`,
      {
        cause: error,
      },
    )
  }
}

/** The database, named without its credentials. */
function describeDatabase(storage: StorageConfig): string {
  if (storage.kind === 'sqlite') return storage.filename
  const schema =
    storage.schema === undefined ? '' : ` (schema ${storage.schema})`
  return `${redactUrl(storage.connectionString)}${schema}`
}

// A driver's message may quote the connection string: its credentials go.
function reasonOf(error: unknown, storage: StorageConfig): string {
  const reason = error instanceof Error ? error.message : String(error)
  return storage.kind === 'sqlite'
    ? reason
    : redactCredentials(reason, storage.connectionString)
}

function formatReport(report: MigrateReport, output: CliOutput): string {
  const colors = outColors(output)
  const where = toPrintable(`${report.dialect} ${report.database}`)
  if (report.applied.length === 0) {
    return `${where} is up to date: no migration to apply\n`
  }
  const count = report.applied.length
  const noun = count === 1 ? 'migration' : 'migrations'
  const lines = report.applied.map((name) => `  ${colors.green('+')} ${name}`)
  return `applied ${count} ${noun} to ${where}:\n${lines.join('\n')}\n`
}
