/**
 * Result files and tables: every benchmark prints a table and writes one
 * JSON file, `<out>/<name>.json`, which `bench/update-docs.mjs` turns into
 * the tables of docs/benchmarks.md.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, totalmem } from 'node:os'
import { join } from 'node:path'

/** What machine and runtime produced a result. */
export function machine() {
  const cpu = cpus()
  return {
    cpu: cpu[0]?.model ?? 'unknown',
    cores: cpu.length,
    memory_gib: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    // Other work on the machine while measuring (1-minute average).
    load_average: Math.round(loadavg()[0] * 10) / 10,
  }
}

/**
 * Writes `<out>/<name>.json` with the machine and the rows, and prints the
 * rows as a table.
 *
 * @param {string} out folder of the result files
 * @param {string} name benchmark name
 * @param {{ rows: Record<string, unknown>[], [key: string]: unknown }} result
 */
export function saveResult(out, name, result) {
  mkdirSync(out, { recursive: true })
  const document = {
    benchmark: name,
    finished_at: new Date().toISOString(),
    machine: machine(),
    ...result,
  }
  writeFileSync(
    join(out, `${name}.json`),
    `${JSON.stringify(document, null, 2)}\n`,
  )
  process.stdout.write(`\n${name}\n${formatTable(result.rows)}\n`)
  return document
}

/**
 * Formats rows (objects with the same keys) as a Markdown table.
 *
 * @param {Record<string, unknown>[]} rows
 */
export function formatTable(rows) {
  if (rows.length === 0) return '(no rows)'
  const keys = Object.keys(rows[0])
  const line = (cells) => `| ${cells.join(' | ')} |`
  return [
    line(keys),
    line(keys.map(() => '---')),
    ...rows.map((row) => line(keys.map((key) => formatCell(row[key])))),
  ].join('\n')
}

function formatCell(value) {
  if (value === undefined || value === null) return ''
  if (typeof value === 'number') {
    if (Number.isInteger(value)) return value.toLocaleString('en-US')
    return value.toFixed(value < 10 ? 2 : 1)
  }
  return String(value)
}

/**
 * The value at quantile `q` (0..1) of unsorted numbers.
 *
 * @param {number[]} values
 * @param {number} q
 */
export function quantile(values, q) {
  if (values.length === 0) return NaN
  const sorted = Float64Array.from(values).sort()
  const index = Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)
  return sorted[Math.max(0, index)]
}

/** Rounds to `digits` decimals. */
export function round(value, digits = 2) {
  const scale = 10 ** digits
  return Math.round(value * scale) / scale
}
