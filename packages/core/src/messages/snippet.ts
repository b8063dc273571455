import type { Channel } from './types.js'

const segmenter = new Intl.Segmenter(undefined, { granularity: 'grapheme' })

const ENTITIES: Readonly<Record<string, string>> = {
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  nbsp: ' ',
}

/**
 * The preview of a body: its first `length` user-perceived characters
 * (grapheme clusters, so an emoji or accented letter is never cut in half),
 * with HTML reduced to its text for email and runs of white space folded.
 */
export function makeSnippet(
  body: string,
  channel: Channel,
  length: number,
): string {
  const text = channel === 'email' ? htmlToText(body) : body
  const folded = text.replace(/\s+/g, ' ').trim()
  return takeGraphemes(folded, length)
}

/** The first `count` grapheme clusters of `text`. */
export function takeGraphemes(text: string, count: number): string {
  if (text.length <= count) return text
  let out = ''
  let taken = 0
  for (const { segment } of segmenter.segment(text)) {
    if (taken === count) break
    out += segment
    taken += 1
  }
  return out
}

function htmlToText(html: string): string {
  return html
    .replace(/<(script|style)\b[^>]*>[\s\S]*?<\/\1\s*>/gi, ' ')
    .replace(/<!--[\s\S]*?-->/g, ' ')
    .replace(/<[^>]*>/g, ' ')
    .replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, decodeEntity)
}

function decodeEntity(whole: string, name: string): string {
  const lower = name.toLowerCase()
  if (lower.startsWith('#')) {
    const code = lower.startsWith('#x')
      ? Number.parseInt(lower.slice(2), 16)
      : Number.parseInt(lower.slice(1), 10)
    return isScalar(code) ? String.fromCodePoint(code) : whole
  }
  return ENTITIES[lower] ?? whole
}

function isScalar(code: number): boolean {
  return (
    Number.isInteger(code) &&
    code > 0 &&
    code <= 0x10ffff &&
    (code < 0xd800 || code > 0xdfff)
  )
}
