/**
 * A worker loop whose steps keep failing (a database outage) logs the
 * first failure, then at most one line per 10 s with the count, and one
 * line when a step succeeds again.
 */
import { describe, expect, it } from 'vitest'
import { WorkerLoop } from '../src/queue/worker-loop.js'
import type { Logger } from '../src/util/logger.js'

interface Line {
  readonly level: string
  readonly event: string
  readonly fields: Record<string, unknown>
}

function capturing(lines: Line[]): Logger {
  const at =
    (level: string) =>
    (event: string, fields: Record<string, unknown> = {}) =>
      lines.push({ level, event, fields })
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
  }
}

describe('a worker loop during an outage', () => {
  it('logs the first failure, then one line per 10 s with the count, then the recovery', async () => {
    const lines: Line[] = []
    let now = 0
    let calls = 0
    let finish: () => void = () => undefined
    const done = new Promise<void>((resolve) => (finish = resolve))
    // 50 failures 500 ms apart (25 s of outage), then success.
    const loop = new WorkerLoop({
      name: 'dispatch',
      pollIntervalMs: 0,
      now: () => now,
      logger: capturing(lines),
      step: async () => {
        calls += 1
        now += 500
        if (calls <= 50) throw new Error('database unreachable')
        if (calls === 51) finish()
        return false
      },
    })
    loop.start()
    await done
    await loop.stop()

    const failed = lines.filter((line) => line.event === 'worker.step_failed')
    expect(failed.map((line) => line.fields.failures)).toEqual([1, 20, 20])
    expect(failed.every((line) => line.level === 'error')).toBe(true)
    expect(lines.at(-1)).toEqual({
      level: 'info',
      event: 'worker.step_recovered',
      fields: { worker: 'dispatch', failures: 50 },
    })
  })
})
