/**
 * `npm run bench`: runs every benchmark, one after the other, each in a
 * process of its own, then rewrites the tables of docs/benchmarks.md from
 * the JSON results. Arguments (`--tiny`, `--out dir`) are passed to each
 * benchmark; with `--out`, the docs are left alone unless `--docs <file>`
 * names the page to update.
 *
 * Usage: node bench/run-all.mjs [--tiny] [--out dir] [--docs file]
 *   [--only accept,storage,...]
 */
import { spawnSync } from 'node:child_process'
import { ROOT, parseOptions } from './lib/options.mjs'

const BENCHMARKS = ['accept', 'storage', 'drain', 'e2e', 'peer', 'profile']

const options = parseOptions()
const only = options.values.get('only')?.split(',') ?? BENCHMARKS
for (const name of only) {
  if (!BENCHMARKS.includes(name))
    throw new RangeError(`unknown benchmark: ${name}`)
}
const passed = [
  ...(options.tiny ? ['--tiny'] : []),
  ...(options.values.has('out') ? ['--out', options.out] : []),
]

function run(script, args) {
  const started = Date.now()
  process.stdout.write(`\n== ${script} ${args.join(' ')}\n`)
  const result = spawnSync(
    process.execPath,
    [`${ROOT}bench/${script}`, ...args],
    {
      cwd: ROOT,
      stdio: 'inherit',
    },
  )
  if (result.status !== 0) {
    throw new Error(
      `bench/${script} failed with ${result.status ?? result.signal}`,
    )
  }
  process.stdout.write(
    `== ${script}: ${Math.round((Date.now() - started) / 1000)} s\n`,
  )
}

for (const name of only) run(`${name}.mjs`, passed)

const docs = options.values.get('docs')
if (docs !== undefined || !options.values.has('out')) {
  run('update-docs.mjs', [
    '--results',
    options.out,
    ...(docs === undefined ? [] : ['--docs', docs]),
  ])
}
