// Loads every package of Parley with `require` and runs the scenario.
'use strict'

const cli = require('@parley/cli')
const core = require('@parley/core')
const nodeSqlite = require('@parley/core/node-sqlite')
const postgres = require('@parley/core/postgres')
const sqlite = require('@parley/core/sqlite')
const server = require('@parley/server')
const { sendReceiveList } = require('./scenario.cjs')

sendReceiveList(core, sqlite).then((result) => {
  const loaded = {
    core: typeof core.createParley,
    sqlite: typeof sqlite.openSqlite,
    postgres: typeof postgres.openPostgres,
    nodeSqlite: typeof nodeSqlite.openNodeSqlite,
    server: typeof server.createApp,
    cli: typeof cli.run,
  }
  console.log(JSON.stringify({ format: 'cjs', loaded, ...result }))
})
