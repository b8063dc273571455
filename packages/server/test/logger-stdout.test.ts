/**
 * The default log sink (standard output, written once per event-loop turn):
 * order, whole lines, nothing lost on the ways the process exits, and a
 * closed standard output. Runs the built code in child processes, as the
 * sink writes to the process's own file descriptor 1.
 */
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { post } from '../../../test/helpers/http.js'
import { mapLimit, smsSend } from '../../../test/helpers/parley.js'
import {
  BULK_LIMITS,
  cleanUpServers,
  makeTempDir,
  REPO_ROOT,
  SERVER_MAIN,
  startServerProcess,
} from '../../../test/helpers/server-process.js'

afterAll(cleanUpServers)

const SERVER_INDEX = pathToFileURL(
  join(REPO_ROOT, 'packages/server/dist/index.js'),
).href

interface Finished {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

// How the parent reads the child's standard output: as it comes, never
// (its reading end hung up at once), or only once the child has written
// "logged" on standard error, so that the pipe fills and stays full.
type Reading = 'read' | 'closed' | 'after-logged'

// Runs `body` as an ES module with `logger` (createJsonLogger('debug'),
// default sink) in scope.
function runWithLogger(
  body: string,
  reading: Reading = 'read',
): Promise<Finished> {
  return runModule(
    `import { createJsonLogger } from ${JSON.stringify(SERVER_INDEX)}\n` +
      `const logger = createJsonLogger('debug')\n${body}`,
    reading,
  )
}

function runModule(source: string, reading: Reading): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--input-type=module', '-e', source],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    let stdout = ''
    let stderr = ''
    let paused = reading === 'after-logged'
    const read = () =>
      child.stdout.setEncoding('utf8').on('data', (c) => (stdout += c))
    if (reading === 'closed') child.stdout.destroy()
    else if (paused) child.stdout.pause()
    else read()
    child.stderr.setEncoding('utf8').on('data', (chunk) => {
      stderr += chunk
      if (paused && stderr.includes('logged')) {
        paused = false
        read()
        child.stdout.resume()
      }
    })
    child.once('error', reject)
    child.once('close', (code) => resolve({ code, stdout, stderr }))
  })
}

function parseLines(stdout: string): Record<string, unknown>[] {
  expect(stdout.endsWith('\n')).toBe(true)
  return stdout
    .slice(0, -1)
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>)
}

describe('the standard output log sink', () => {
  it('writes every line whole and in order, across turns and past the 64 KiB flush', async () => {
    // Lines of growing size (one larger than the buffer), logged 1 to 40
    // per turn, the last ones right before process.exit.
    const run = await runWithLogger(`
      let n = 0
      for (let turn = 0; turn < 60; turn++) {
        for (let i = 0; i <= turn % 40; i++) {
          logger.info('seq', { n: n++, pad: 'x'.repeat((n * 37) % 3000), turn })
        }
        if (turn === 30) logger.info('seq', { n: n++, pad: 'y'.repeat(70000) })
        await new Promise((resolve) => setImmediate(resolve))
      }
      logger.warn('seq', { n: n++, last: true })
      process.exit(0)
    `)
    expect(run.code).toBe(0)
    const lines = parseLines(run.stdout)
    expect(lines.map((line) => line.n)).toEqual(
      Array.from({ length: lines.length }, (_, i) => i),
    )
    expect(lines.at(-1)).toMatchObject({ event: 'seq', last: true })
    expect(lines.length).toBeGreaterThan(800)
  })

  it('writes the lines of the last turn when the process ends by itself', async () => {
    const run = await runWithLogger(`logger.info('only.line', { a: 1 })`)
    expect(run.code).toBe(0)
    expect(parseLines(run.stdout)).toMatchObject([
      { level: 'info', event: 'only.line', a: 1 },
    ])
  })

  it('writes the line logged right before an uncaught exception', async () => {
    const run = await runWithLogger(`
      setImmediate(() => {
        logger.info('before.crash')
        logger.error('fatal.thing', { error: 'it broke' })
        throw new Error('boom')
      })
    `)
    expect(run.code).toBe(1)
    expect(run.stderr).toContain('boom')
    expect(parseLines(run.stdout)).toMatchObject([
      { event: 'before.crash' },
      { level: 'error', event: 'fatal.thing', error: 'it broke' },
    ])
  })

  it('writes the line logged right before an unhandled rejection', async () => {
    const run = await runWithLogger(`
      logger.error('fatal.rejection')
      Promise.reject(new Error('rejected'))
    `)
    expect(run.code).toBe(1)
    expect(parseLines(run.stdout)).toMatchObject([{ event: 'fatal.rejection' }])
  })

  it('keeps every line when a non-blocking standard output is full, at exit too', async () => {
    // process.stdout makes the pipe non-blocking; the parent reads nothing
    // until the child says it logged, so the pipe fills (EAGAIN) and the
    // rest waits in the sink, through the exit.
    const source =
      `import { createJsonLogger } from ${JSON.stringify(SERVER_INDEX)}\n` +
      `process.stdout\n` +
      `const logger = createJsonLogger('info')\n` +
      `for (let n = 0; n < 2000; n++) logger.info('seq', { n, pad: 'p'.repeat(1000) })\n` +
      `await new Promise((resolve) => setImmediate(resolve))\n` +
      `for (let n = 2000; n < 3000; n++) logger.info('seq', { n })\n` +
      `process.stderr.write('logged\\n')\n` +
      `process.exit(0)\n`
    const run = await runModule(source, 'after-logged')
    expect(run.code).toBe(0)
    expect(parseLines(run.stdout).map((line) => line.n)).toEqual(
      Array.from({ length: 3000 }, (_, i) => i),
    )
  })

  it('leaves no line cut in half when it gives up at exit on a reader that never reads', async () => {
    // Lines of many lengths, far more than a pipe holds, into a real pipe
    // (what docker or a shell gives; a child's stdio here would be a
    // socket) whose reader starts only after 3 s: the exit gives up after
    // 2 s. What the pipe took must be whole lines, or the cut one would
    // run into the first line of whatever writes to that reader next.
    const source =
      `import { createJsonLogger } from ${JSON.stringify(SERVER_INDEX)}\n` +
      `process.stdout\n` +
      `const logger = createJsonLogger('info')\n` +
      `for (let n = 0; n < 600; n++) logger.info('seq', { n, pad: 'p'.repeat((n * 37) % 1500) })\n` +
      `await new Promise((resolve) => setImmediate(resolve))\n` +
      `for (let n = 600; n < 700; n++) logger.info('seq', { n })\n` +
      `process.exit(0)\n`
    const run = await new Promise<Finished>((resolve, reject) => {
      const shell = spawn(
        'sh',
        [
          '-c',
          '"$0" --input-type=module -e "$1" | (sleep 3; cat)',
          process.execPath,
          source,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      )
      let stdout = ''
      let stderr = ''
      shell.stdout.setEncoding('utf8').on('data', (c) => (stdout += c))
      shell.stderr.setEncoding('utf8').on('data', (c) => (stderr += c))
      shell.once('error', reject)
      shell.once('close', (code) => resolve({ code, stdout, stderr }))
    })
    expect(run.code, run.stderr).toBe(0)
    const lines = parseLines(run.stdout)
    // Some were given up on, and what came is a run from the first.
    expect(lines.length).toBeGreaterThan(10)
    expect(lines.length).toBeLessThan(700)
    expect(lines.map((line) => line.n)).toEqual(
      Array.from({ length: lines.length }, (_, i) => i),
    )
  })

  it('keeps the process running when the reader of standard output is gone, and says so once', async () => {
    // 2 MB of lines cannot fit in a pipe: the writes reach the closed end.
    const run = await runWithLogger(
      `
      for (let turn = 0; turn < 200; turn++) {
        for (let i = 0; i < 10; i++) logger.info('filler', { pad: 'z'.repeat(1000) })
        await new Promise((resolve) => setImmediate(resolve))
      }
      process.stderr.write('still running\\n')
    `,
      'closed',
    )
    expect(run.code).toBe(0)
    expect(run.stderr).toBe(
      'parley: standard output is closed; log lines are dropped\nstill running\n',
    )
  })
  it('never waits for a reader that stopped reading: keeps at most 16 MiB, counts the lines it dropped, and writes the rest once the reader is back', async () => {
    // 40,000 lines of about 1 KB: far more than the pipe and the backlog
    // hold while the parent reads nothing.
    const source =
      `import { createJsonLogger } from ${JSON.stringify(SERVER_INDEX)}\n` +
      `const logger = createJsonLogger('info')\n` +
      `const started = Date.now()\n` +
      `for (let turn = 0; turn < 40; turn++) {\n` +
      `  for (let n = 0; n < 1000; n++) logger.info('seq', { n: turn * 1000 + n, pad: 'p'.repeat(1000) })\n` +
      `  await new Promise((resolve) => setImmediate(resolve))\n` +
      `}\n` +
      `process.stderr.write('logged ' + (Date.now() - started) + ' ' + process.memoryUsage().rss + '\\n')\n` +
      // Alive while the parent reads the rest.
      `await new Promise((resolve) => setTimeout(resolve, 3000))\n`
    const run = await runModule(source, 'after-logged')
    expect(run.code).toBe(0)
    const [, , rss] = run.stderr.trim().split(' ')
    // The lines waiting stayed bounded: well under the 40 MB logged.
    expect(Number(rss)).toBeLessThan(200 * 1024 * 1024)
    const lines = parseLines(run.stdout)
    const kept = lines.filter((line) => line.event === 'seq')
    const notes = lines.filter((line) => line.event === 'log.lines_dropped')
    expect(notes).toHaveLength(1)
    expect(notes[0]).toMatchObject({ level: 'warn' })
    expect(kept.length + Number(notes[0]!.lines)).toBe(40_000)
    expect(kept.length).toBeGreaterThan(10_000)
    // What was kept is in order.
    const seen = kept.map((line) => Number(line.n))
    expect(seen).toEqual([...seen].sort((a, b) => a - b))
  })
})

describe('the server process with a log reader that stopped reading', () => {
  it('keeps answering, and stops on SIGTERM', async () => {
    const child = spawn(process.execPath, [SERVER_MAIN], {
      cwd: makeTempDir(),
      env: {
        PATH: process.env.PATH ?? '',
        PORT: '0',
        HOST: '127.0.0.1',
        DATABASE_URL: 'parley.db',
        ...BULK_LIMITS,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const exited = new Promise<number | null>((resolve) =>
      child.once('exit', (code) => resolve(code)),
    )
    try {
      let seen = ''
      const url = await new Promise<string>((resolve, reject) => {
        child.once('exit', () => reject(new Error(`exited: ${seen}`)))
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
          seen += chunk
          const found = /"url":"(http:[^"]+)"/.exec(seen)
          if (found) resolve(found[1]!)
        })
      })
      // From here on the server's standard output fills and stays full.
      child.stdout.removeAllListeners('data')
      child.stdout.pause()

      const bodies = Array.from({ length: 2000 }, (_, n) =>
        smsSend({
          from: `+1804556${String(n).padStart(4, '0')}`,
          body: 'x'.repeat(500),
        }),
      )
      const statuses = await mapLimit(bodies, 16, async (body) => {
        const response = await post(url, '/api/messages/sms', body)
        return response.status
      })
      expect(statuses.filter((status) => status !== 202)).toEqual([])
      const health = await fetch(`${url}/healthz`, {
        signal: AbortSignal.timeout(5000),
      })
      expect(health.status).toBe(200)

      child.kill('SIGTERM')
      // Exit gives standard output 2 s to take something, then goes.
      expect(await exited).toBe(0)
    } finally {
      child.kill('SIGKILL')
    }
  })
})

describe('the server process on SIGTERM', () => {
  it('has written the access line of every answered request when it exits', async () => {
    const server = await startServerProcess()
    const bodies = Array.from({ length: 60 }, (_, i) =>
      smsSend({ body: `logged ${i}` }),
    )
    const responses = await mapLimit(bodies, 16, (body) =>
      post(server.url, '/api/messages/sms', body),
    )
    const ids = responses.map((response) => {
      expect(response.status).toBe(202)
      return response.headers.get('x-request-id')
    })
    server.kill('SIGTERM')
    expect(await server.waitForExit()).toBe(0)
    const lines = server.logLines()
    const logged = new Set(
      lines
        .filter((line) => line.event === 'http.request')
        .map((line) => line.request_id),
    )
    for (const id of ids) expect(logged).toContain(id)
    expect(lines.at(-1)).toMatchObject({ event: 'server.shutdown_finished' })
    // Nothing but whole JSON lines.
    const text = server.stdout
    expect(text.split('\n').filter(Boolean)).toHaveLength(lines.length)
  })
})
