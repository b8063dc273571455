/**
 * Command-line options shared by every benchmark command.
 *
 * `--tiny` shrinks every size and duration so that the harness runs in a
 * few seconds (the smoke test uses it); `--out <dir>` says where the JSON
 * results go (default `bench/results`); `--batch <n>` and `--events <n>`
 * tune the drain benchmarks.
 */
import { fileURLToPath } from 'node:url'

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url))

/**
 * Parses `argv` into the shared options.
 *
 * @param {string[]} argv arguments after the script name
 * @returns {{ tiny: boolean, out: string, values: Map<string, string> }}
 */
export function parseOptions(argv = process.argv.slice(2)) {
  const values = new Map()
  let tiny = false
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i]
    if (arg === '--tiny') tiny = true
    else if (arg.startsWith('--') && i + 1 < argv.length) {
      values.set(arg.slice(2), argv[i + 1])
      i += 1
    } else throw new RangeError(`unknown argument: ${arg}`)
  }
  const out = values.get('out') ?? `${ROOT}bench/results`
  return { tiny, out, values }
}

/**
 * A whole-number option, or its default.
 *
 * @param {{ values: Map<string, string> }} options
 * @param {string} name
 * @param {number} fallback
 */
export function intOption(options, name, fallback) {
  const raw = options.values.get(name)
  if (raw === undefined) return fallback
  const value = Number(raw)
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`--${name} must be a positive integer, got ${raw}`)
  }
  return value
}

/**
 * A list of whole numbers (`--batch 100,1000`), or its default.
 *
 * @param {{ values: Map<string, string> }} options
 * @param {string} name
 * @param {number[]} fallback
 */
export function intListOption(options, name, fallback) {
  const raw = options.values.get(name)
  if (raw === undefined) return fallback
  return raw.split(',').map((part) => {
    const value = Number(part)
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new RangeError(`--${name} takes positive integers, got ${raw}`)
    }
    return value
  })
}
