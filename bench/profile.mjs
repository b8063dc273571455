/**
 * Profiles the accept path: runs the Parley server with `--cpu-prof`
 * under the accept benchmark's load (SQLite, default settings) and prints
 * the functions that took the most CPU, by self and by total time. The
 * profile file is kept for Chrome DevTools or speedscope.
 *
 * Usage: node bench/profile.mjs [--tiny] [--out dir] [--duration s]
 */
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { intOption, parseOptions } from './lib/options.mjs'
import { summarizeProfile } from './lib/cpu-profile.mjs'
import { runLoad } from './lib/processes.mjs'
import { formatTable, saveResult } from './lib/results.mjs'
import { scratchDir, startParley } from './lib/parley-server.mjs'

const options = parseOptions()
const durationSec = intOption(options, 'duration', options.tiny ? 1 : 10)
const connections = intOption(options, 'connections', options.tiny ? 4 : 64)
const dir = scratchDir('profile')

const server = await startParley({
  dir,
  name: 'profile',
  env: {},
  nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`],
})
let load
try {
  load = await runLoad({
    url: server.url,
    path: '/api/messages/sms',
    kind: 'send',
    connections,
    durationSec,
  })
} finally {
  await server.stop()
}

// Kept beside the results (git ignores *.cpuprofile) for DevTools.
mkdirSync(options.out, { recursive: true })
const file = join(options.out, 'accept.cpuprofile')
copyFileSync(
  join(
    dir,
    readdirSync(dir).find((name) => name.endsWith('.cpuprofile')),
  ),
  file,
)
const summary = summarizeProfile(file, 30)
process.stdout.write(
  `\nprofile: ${file}\nby total time\n${formatTable(summary.total)}\n`,
)
saveResult(options.out, 'profile', {
  settings: { durationSec, connections },
  load,
  profile_ms: Math.round(summary.totalMs),
  rows: summary.self,
  total: summary.total,
})
