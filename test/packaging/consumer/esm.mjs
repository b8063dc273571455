// Loads every package of Parley with `import` and runs the scenario.
import * as cli from '@parley/cli'
import * as core from '@parley/core'
import * as nodeSqlite from '@parley/core/node-sqlite'
import * as postgres from '@parley/core/postgres'
import * as sqlite from '@parley/core/sqlite'
import * as server from '@parley/server'
import scenario from './scenario.cjs'

const result = await scenario.sendReceiveList(core, sqlite)
const loaded = {
  core: typeof core.createParley,
  sqlite: typeof sqlite.openSqlite,
  postgres: typeof postgres.openPostgres,
  nodeSqlite: typeof nodeSqlite.openNodeSqlite,
  server: typeof server.createApp,
  cli: typeof cli.run,
}
console.log(JSON.stringify({ format: 'esm', loaded, ...result }))
