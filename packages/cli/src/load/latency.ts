/** Percentiles of request latencies, in milliseconds. */
export interface LatencySummary {
  p50: number
  p90: number
  p99: number
  max: number
}

/**
 * The 50th, 90th and 99th percentiles (nearest rank: the smallest sample
 * that at least that share of samples do not exceed) and the maximum,
 * rounded to 0.01 ms; `null` without samples.
 *
 * @example
 * summarizeLatencies([4, 1, 3, 2]) // { p50: 2, p90: 4, p99: 4, max: 4 }
 */
export function summarizeLatencies(
  samples: readonly number[],
): LatencySummary | null {
  if (samples.length === 0) return null

  const sorted = [...samples].sort((a, b) => a - b)
  return {
    p50: round(nearestRank(sorted, 0.5)),
    p90: round(nearestRank(sorted, 0.9)),
    p99: round(nearestRank(sorted, 0.99)),
    max: round(sorted[sorted.length - 1] ?? 0),
  }
}

function nearestRank(sorted: readonly number[], share: number): number {
  const rank = Math.max(1, Math.ceil(share * sorted.length))
  return sorted[rank - 1] ?? 0
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100
}
