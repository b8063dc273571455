/**
 * Child processes of the benchmarks: the Parley server, the bare node:http
 * server and the load generator each run in a process of their own, on
 * loopback only.
 */
import { spawn } from 'node:child_process'
import { createWriteStream, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { ROOT } from './options.mjs'

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address()
      probe.close(() => resolve(port))
    })
  })
}

/**
 * Starts a Node script as a server on a free port and waits until `path`
 * answers 200.
 *
 * @param {object} options
 * @param {string} options.script path from the repository root
 * @param {Record<string, string>} [options.env] extra environment
 * @param {string[]} [options.nodeArgs] e.g. `--cpu-prof`
 * @param {string} [options.readyPath] polled until it answers 200
 * @param {string} [options.logFile] where stdout and stderr go
 */
export async function startServerProcess(options) {
  const port = await freePort()
  const child = spawn(
    process.execPath,
    [...(options.nodeArgs ?? []), `${ROOT}${options.script}`],
    {
      cwd: ROOT,
      env: {
        ...inheritedEnv(),
        ...options.env,
        HOST: '127.0.0.1',
        PORT: String(port),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  const log = createWriteStream(options.logFile ?? '/dev/null')
  child.stdout.pipe(log)
  child.stderr.pipe(log)
  const url = `http://127.0.0.1:${port}`
  await waitUntilReady(child, `${url}${options.readyPath ?? '/healthz'}`)
  return { url, port, pid: child.pid, child, stop: () => stopProcess(child) }
}

// Only these come from the benchmark's own environment: nothing else it
// happens to have set (PORT, DATABASE_URL, API_*) may change a server.
function inheritedEnv() {
  const names = ['PATH', 'HOME', 'TMPDIR', 'LANG']
  return Object.fromEntries(
    names
      .filter((name) => name in process.env)
      .map((name) => [name, process.env[name]]),
  )
}

async function waitUntilReady(child, url) {
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`server exited with ${child.exitCode} before ready`)
    }
    try {
      const response = await fetch(url)
      await response.arrayBuffer()
      if (response.status === 200) return
    } catch {
      // Not listening yet.
    }
    await sleep(50)
  }
  child.kill('SIGKILL')
  throw new Error(`server at ${url} was not ready within 30 s`)
}

/** Sends SIGTERM and resolves the exit code (SIGKILL after 30 s). */
export function stopProcess(child) {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode)
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
    child.once('exit', (code) => {
      clearTimeout(timer)
      resolve(code)
    })
    child.kill('SIGTERM')
  })
}

/**
 * Runs `bench/lib/load.mjs` (autocannon) in a process of its own with the
 * given job and resolves its JSON summary.
 *
 * @param {Record<string, unknown>} job what load.mjs takes
 */
export function runLoad(job) {
  return runJsonProcess('bench/lib/load.mjs', job)
}

/**
 * Runs a Node script that takes one JSON argument and prints one JSON
 * document, and resolves that document.
 *
 * @param {string} script path from the repository root
 * @param {unknown} input
 */
export function runJsonProcess(script, input) {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [`${ROOT}${script}`, JSON.stringify(input)],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
    )
    let output = ''
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (chunk) => (output += chunk))
    child.once('error', reject)
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`${script} exited with ${code}`))
      else resolve(JSON.parse(output))
    })
  })
}

/**
 * Resident memory of a process from /proc, in MiB: `rss` now and `peak`
 * (the kernel's high-water mark, VmHWM) since it started. Undefined where
 * /proc is missing.
 *
 * @param {number} pid
 */
export function memoryOf(pid) {
  let status
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8')
  } catch {
    return undefined
  }
  const field = (name) => {
    const match = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)
    return match ? Math.round(Number(match[1]) / 1024) : NaN
  }
  return { rss: field('VmRSS'), peak: field('VmHWM') }
}

/**
 * CPU time a process has used so far (user + system), in milliseconds,
 * from /proc; NaN where /proc is missing. On a shared machine the CPU a
 * server spends per request is steadier than its requests per second.
 *
 * @param {number} pid
 */
export function cpuTimeOf(pid) {
  let stat
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return NaN
  }
  // Fields after the command name, which may itself hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const ticks = Number(fields[11]) + Number(fields[12])
  return (ticks * 1000) / CLOCK_TICKS_PER_SECOND
}

// USER_HZ, 100 on every Linux build Node supports.
const CLOCK_TICKS_PER_SECOND = 100
