/**
 * Rewrites the generated parts of docs/benchmarks.md from the JSON result
 * files: everything between `<!-- bench:<name> -->` and
 * `<!-- /bench:<name> -->` is replaced, the rest of the page is left as
 * written. Fails when a marker pair is missing, so that the page and the
 * benchmarks cannot drift apart silently.
 *
 * Usage: node bench/update-docs.mjs [--results dir] [--docs file]
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import * as prettier from 'prettier'
import { ROOT, parseOptions } from './lib/options.mjs'
import { formatTable, round } from './lib/results.mjs'

const options = parseOptions()
const results = options.values.get('results') ?? options.out
const docs = options.values.get('docs') ?? `${ROOT}docs/benchmarks.md`

function load(name) {
  const file = join(results, `${name}.json`)
  return existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : undefined
}

const found = Object.fromEntries(
  ['accept', 'storage', 'drain', 'e2e', 'peer', 'profile'].map((name) => [
    name,
    load(name),
  ]),
)

function table(result) {
  if (result === undefined) return '(not measured in this run)'
  if (result.rows.length === 0)
    return `(skipped: ${result.postgres ?? 'no rows'})`
  return formatTable(result.rows)
}

function machineSection() {
  const any = Object.values(found).find((result) => result !== undefined)
  if (any === undefined) return '(no results)'
  const m = any.machine
  const finished = Object.values(found)
    .filter(Boolean)
    .map((result) => result.finished_at)
    .sort()
  const loads = Object.values(found)
    .filter((result) => result?.machine.load_average !== undefined)
    .map((result) => `${result.benchmark} ${result.machine.load_average}`)
  return [
    `- CPU: ${m.cpu}, ${m.cores} cores (shared with other work while measured)`,
    `- Memory: ${m.memory_gib} GiB; Node ${m.node}; ${m.platform}`,
    `- Run: ${finished[0]} to ${finished.at(-1)}`,
    `- Load average (1 min) at the end of each benchmark: ${loads.join(', ')}`,
  ].join('\n')
}

function rowOf(result, predicate) {
  return result?.rows.find(predicate)
}

// Every ratio of the run in one table.
function ratiosSection() {
  const { accept, storage, drain, peer } = found
  const rows = []
  const bare = rowOf(accept, (r) => r.setup.startsWith('bare'))
  const parleyFull = rowOf(accept, (r) => r.setup.includes('FULL (default)'))
  const parleyNormal = rowOf(
    accept,
    (r) => r.setup === 'Parley, synchronous=NORMAL',
  )
  const ceilingFull = rowOf(storage, (r) => r.setup.endsWith('FULL'))
  const ceilingNormal = rowOf(storage, (r) => r.setup.endsWith('NORMAL'))
  const add = (what, value, goal = '') =>
    rows.push({
      ratio: what,
      value: Number.isFinite(value) ? round(value) : 'n/a',
      goal,
    })
  for (const r of accept?.rows ?? []) {
    if (r !== bare)
      add(
        `${r.setup} / bare node:http (accept req/s)`,
        r['of bare'],
        r === parleyFull ? '>= 0.40' : '',
      )
  }
  if (parleyFull && ceilingFull) {
    add(
      'Parley FULL accept / better-sqlite3 inserts by hand, FULL',
      parleyFull['req/s'] / ceilingFull['messages/s'],
    )
  }
  if (parleyNormal && ceilingNormal) {
    add(
      'Parley NORMAL accept / better-sqlite3 inserts by hand, NORMAL',
      parleyNormal['req/s'] / ceilingNormal['messages/s'],
    )
  }
  for (const r of drain?.rows ?? []) {
    if (r.database === 'SQLite' && r.drainer.startsWith('Parley')) {
      add(
        `Parley inbound drain / hand-written drain, batch ${r.batch}`,
        r['of hand-written'],
        r.batch === 100 ? '>= 0.50' : '',
      )
    }
  }
  for (const r of peer?.rows.slice(1) ?? []) {
    add(`Parley dispatch / ${r.setup} (Postgres jobs/s)`, r['Parley as ratio'])
  }
  return rows.length === 0 ? '(no results)' : formatTable(rows)
}

function memorySection() {
  const memory = found.accept?.memory
  if (memory === undefined) return '(not measured in this run)'
  return formatTable([
    {
      measure: 'peak RSS of the server during the accept benchmark (FULL)',
      MiB: memory.peak_rss_mib_during_accept,
    },
    {
      measure: `RSS after ${memory.distinct_senders.toLocaleString('en-US')} distinct senders`,
      MiB: memory.rss_mib_after_senders,
    },
  ])
}

function profileSection() {
  const profile = found.profile
  if (profile === undefined) return '(not measured in this run)'
  const top = (entries) =>
    formatTable(
      entries
        .slice(0, 12)
        .map((e) => ({ function: `\`${e.name}\``, ms: e.ms, '%': e.share })),
    )
  return [
    `${Math.round(profile.load.rps).toLocaleString('en-US')} req/s under the profiler, ${profile.profile_ms.toLocaleString('en-US')} ms of samples.`,
    '',
    'Self time:',
    '',
    top(profile.rows),
    '',
    'Total time (the function and what it called):',
    '',
    top(profile.total.filter((e) => !e.name.startsWith('('))),
  ].join('\n')
}

const sections = {
  machine: machineSection(),
  ratios: ratiosSection(),
  accept: table(found.accept),
  memory: memorySection(),
  storage: table(found.storage),
  drain: table(found.drain),
  e2e: table(found.e2e),
  peer: table(found.peer),
  profile: profileSection(),
}

let page = readFileSync(docs, 'utf8')
for (const [name, body] of Object.entries(sections)) {
  const open = `<!-- bench:${name} -->`
  const close = `<!-- /bench:${name} -->`
  const start = page.indexOf(open)
  const end = page.indexOf(close)
  if (start < 0 || end < start) {
    throw new Error(`${docs}: missing the markers ${open} ... ${close}`)
  }
  page = `${page.slice(0, start + open.length)}\n\n${body}\n\n${page.slice(end)}`
}
// Formatted as the rest of the repository, so that a fresh run leaves the
// page as `prettier --check` wants it.
const style = (await prettier.resolveConfig(docs)) ?? {}
writeFileSync(docs, await prettier.format(page, { ...style, filepath: docs }))
process.stdout.write(`updated ${docs}\n`)
