/**
 * Reads a V8 `.cpuprofile` (written by `node --cpu-prof`) and sums the
 * samples by function: self time (spent in the function itself) and total
 * time (in it or anything it called, each sample counted once per
 * function).
 */
import { readFileSync } from 'node:fs'

/**
 * The functions that took the most time, heaviest first.
 *
 * @param {string} file path of a .cpuprofile
 * @param {number} [top] how many to return
 * @returns {{ totalMs: number, self: Entry[], total: Entry[] }}
 *
 * @typedef {{ name: string, ms: number, share: number }} Entry
 */
export function summarizeProfile(file, top = 25) {
  const profile = JSON.parse(readFileSync(file, 'utf8'))
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]))
  const parents = new Map()
  for (const node of profile.nodes) {
    for (const child of node.children ?? []) parents.set(child, node.id)
  }
  const self = new Map()
  const total = new Map()
  profile.samples.forEach((id, index) => {
    const ms = (profile.timeDeltas[index] ?? 0) / 1000
    add(self, labelOf(nodes.get(id)), ms)
    const seen = new Set()
    for (let at = id; at !== undefined; at = parents.get(at)) {
      const label = labelOf(nodes.get(at))
      if (seen.has(label)) continue
      seen.add(label)
      add(total, label, ms)
    }
  })
  const totalMs = [...self.values()].reduce((sum, ms) => sum + ms, 0)
  return {
    totalMs,
    self: heaviest(self, totalMs, top),
    total: heaviest(total, totalMs, top),
  }
}

function add(map, key, ms) {
  map.set(key, (map.get(key) ?? 0) + ms)
}

function labelOf(node) {
  const frame = node.callFrame
  const name = frame.functionName || '(anonymous)'
  if (!frame.url) return name
  const file = frame.url.replace(/^.*\/(node_modules|packages)\//, '$1/')
  return `${name} ${file}:${frame.lineNumber + 1}`
}

function heaviest(map, totalMs, top) {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, ms]) => ({
      name,
      ms: Math.round(ms),
      share: Math.round((1000 * ms) / totalMs) / 10,
    }))
}
