/**
 * A strict JSON parser for request bodies. For the JSON it accepts it
 * returns exactly what `JSON.parse` returns (plain objects with own data
 * properties, arrays, strings, numbers, booleans, null); it refuses, with
 * 400 `invalid_json`, the JSON that `JSON.parse` would take but that could
 * mislead or hurt the code reading it (DESIGN section 4, issue 4):
 *
 * - a key that appears twice in one object (`JSON.parse` keeps the last,
 *   another parser in front of us may have kept the first);
 * - the keys `__proto__`, `constructor` and `prototype`, the handles of
 *   prototype pollution in code that merges objects;
 * - nesting deeper than {@link MAX_JSON_DEPTH} objects and arrays;
 * - a number larger in magnitude than 2^53 − 1 (infinities included). Past
 *   `Number.MAX_SAFE_INTEGER` a double no longer holds every integer, so an
 *   id sent as a large number would be stored silently altered. The rule
 *   looks at the value, not the notation: `1e300` and
 *   `9007199254740993.0` are refused too. Smaller numbers keep the usual
 *   JavaScript semantics (`0.1` is the nearest double, `1e-400` is 0).
 *
 * Strings are kept as decoded, NUL characters and lone surrogates
 * included: those are validation errors of the fields that hold them, not
 * syntax errors. The parser recurses once per level of nesting, so its
 * depth is bounded by {@link MAX_JSON_DEPTH}, whatever the input.
 */
import { HttpError } from './http-error.js'

/** The deepest nesting of objects and arrays accepted; the top level is 1. */
export const MAX_JSON_DEPTH = 32

/** Keys refused anywhere in a body. */
export const RESERVED_KEYS: ReadonlySet<string> = new Set([
  '__proto__',
  'constructor',
  'prototype',
])

/** One step of the path to a value: a key or an array index. */
type PathStep = string | number

const QUOTE = 0x22
const BACKSLASH = 0x5c
const COMMA = 0x2c
const COLON = 0x3a
const OPEN_BRACE = 0x7b
const CLOSE_BRACE = 0x7d
const OPEN_BRACKET = 0x5b
const CLOSE_BRACKET = 0x5d
const MINUS = 0x2d
const PLUS = 0x2b
const DOT = 0x2e
const DIGIT_0 = 0x30
const DIGIT_9 = 0x39

// A backslash or a control character: a string that needs decoding.
const NEEDS_DECODING = /[\\\u0000-\u001f]/

/**
 * Parses JSON text with the rules above. Throws an {@link HttpError} 400
 * `invalid_json` whose message says what is wrong and where: the position
 * for syntax errors, the path (`$.attachments[0]`) for refused content.
 *
 * @example
 * parseJsonText('{"to": "+18045551234"}') // { to: '+18045551234' }
 * parseJsonText('{"a": 1, "a": 2}') // throws: the key $.a appears twice
 */
export function parseJsonText(text: string): unknown {
  return new StrictJsonParser(text).parseDocument()
}

class StrictJsonParser {
  private pos = 0
  // path[i] is the key or index being parsed at nesting level i + 1.
  private readonly path: PathStep[] = []

  constructor(private readonly text: string) {}

  parseDocument(): unknown {
    const value = this.parseValue(0)
    this.skipWhitespace()
    if (this.pos < this.text.length) {
      this.syntaxError('unexpected data after the JSON value')
    }
    return value
  }

  private parseValue(depth: number): unknown {
    this.skipWhitespace()
    const code = this.text.charCodeAt(this.pos)
    if (code === OPEN_BRACE) return this.parseObject(depth + 1)
    if (code === OPEN_BRACKET) return this.parseArray(depth + 1)
    if (code === QUOTE) return this.parseString()
    if (code === MINUS || isDigit(code)) return this.parseNumber(depth)
    return this.parseLiteral()
  }

  private parseObject(depth: number): Record<string, unknown> {
    this.checkDepth(depth)
    const object: Record<string, unknown> = {}
    this.pos += 1
    if (this.peekPastWhitespace() === CLOSE_BRACE) {
      this.pos += 1
      return object
    }
    for (;;) {
      const key = this.parseKey(object, depth)
      object[key] = this.parseValue(depth)
      if (!this.parseSeparator(CLOSE_BRACE, 'a "," or "}" in an object')) {
        return object
      }
    }
  }

  // Reads `"key" :` and checks the key may be used in `object`.
  private parseKey(object: Record<string, unknown>, depth: number): string {
    if (this.peekPastWhitespace() !== QUOTE) this.syntaxError('expected a key')
    const key = this.parseString()
    this.path[depth - 1] = key
    if (RESERVED_KEYS.has(key)) this.reservedKey(depth)
    if (Object.hasOwn(object, key)) this.duplicateKey(depth)
    if (this.peekPastWhitespace() !== COLON) {
      this.syntaxError('expected ":" after a key')
    }
    this.pos += 1
    return key
  }

  private parseArray(depth: number): unknown[] {
    this.checkDepth(depth)
    const array: unknown[] = []
    this.pos += 1
    if (this.peekPastWhitespace() === CLOSE_BRACKET) {
      this.pos += 1
      return array
    }
    for (;;) {
      this.path[depth - 1] = array.length
      array.push(this.parseValue(depth))
      if (!this.parseSeparator(CLOSE_BRACKET, 'a "," or "]" in an array')) {
        return array
      }
    }
  }

  // After a member: true on a comma (another member follows), false on the
  // closing bracket.
  private parseSeparator(close: number, expected: string): boolean {
    const code = this.peekPastWhitespace()
    this.pos += 1
    if (code === COMMA) return true
    if (code === close) return false
    this.pos -= 1
    return this.syntaxError(`expected ${expected}`)
  }

  // Finds the closing quote natively; a string with escapes or control
  // characters is then decoded (or refused) by JSON.parse itself, which
  // handles exactly one string token here.
  private parseString(): string {
    const text = this.text
    const start = this.pos
    const end = this.closingQuote(start + 1)
    this.pos = end + 1
    const raw = text.slice(start + 1, end)
    if (!NEEDS_DECODING.test(raw)) return raw
    try {
      return JSON.parse(text.slice(start, end + 1)) as string
    } catch {
      this.pos = start
      return this.syntaxError(
        'a string holds an invalid escape or a raw control character',
      )
    }
  }

  // The index of the quote that ends the string whose text starts at
  // `from`: the first one after an even run of backslashes.
  private closingQuote(from: number): number {
    const text = this.text
    let quote = text.indexOf('"', from)
    while (quote >= 0 && isEscaped(text, quote)) {
      quote = text.indexOf('"', quote + 1)
    }
    if (quote >= 0) return quote
    this.pos = text.length
    return this.syntaxError('a string is not closed')
  }

  private parseNumber(depth: number): number {
    const start = this.pos
    this.skipNumber()
    const value = Number(this.text.slice(start, this.pos))
    if (Math.abs(value) > Number.MAX_SAFE_INTEGER) {
      this.unsafeNumber(start, depth)
    }
    return value
  }

  // Moves past `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
  private skipNumber(): void {
    const text = this.text
    if (text.charCodeAt(this.pos) === MINUS) this.pos += 1
    if (text.charCodeAt(this.pos) === DIGIT_0) this.pos += 1
    else this.skipDigits('a digit')
    if (text.charCodeAt(this.pos) === DOT) {
      this.pos += 1
      this.skipDigits('a digit after "."')
    }
    const code = text.charCodeAt(this.pos)
    if (code === 0x65 || code === 0x45) {
      this.pos += 1
      const sign = text.charCodeAt(this.pos)
      if (sign === PLUS || sign === MINUS) this.pos += 1
      this.skipDigits('a digit in the exponent')
    }
  }

  private skipDigits(expected: string): void {
    const start = this.pos
    while (isDigit(this.text.charCodeAt(this.pos))) this.pos += 1
    if (this.pos === start) this.syntaxError(`expected ${expected}`)
  }

  private parseLiteral(): boolean | null {
    if (this.text.startsWith('true', this.pos)) return this.advance(4, true)
    if (this.text.startsWith('false', this.pos)) return this.advance(5, false)
    if (this.text.startsWith('null', this.pos)) return this.advance(4, null)
    return this.syntaxError(
      this.pos < this.text.length ? 'expected a value' : 'the JSON ends early',
    )
  }

  private advance<T>(length: number, value: T): T {
    this.pos += length
    return value
  }

  private peekPastWhitespace(): number {
    this.skipWhitespace()
    return this.text.charCodeAt(this.pos)
  }

  private skipWhitespace(): void {
    const text = this.text
    let pos = this.pos
    for (;;) {
      const code = text.charCodeAt(pos)
      if (code !== 0x20 && code !== 0x0a && code !== 0x0d && code !== 0x09) {
        break
      }
      pos += 1
    }
    this.pos = pos
  }

  private checkDepth(depth: number): void {
    if (depth <= MAX_JSON_DEPTH) return
    const where = this.pathText(depth - 1)
    const limit = MAX_JSON_DEPTH
    this.refuse(
      `nests objects and arrays deeper than ${limit} levels at ${where}`,
    )
  }

  private reservedKey(depth: number): never {
    return this.refuse(
      `uses the key ${this.pathText(depth)}, which is refused: ` +
        '__proto__, constructor and prototype can pollute objects',
    )
  }

  private duplicateKey(depth: number): never {
    return this.refuse(
      `has the key ${this.pathText(depth)} twice in one object; ` +
        'each key may appear once',
    )
  }

  private unsafeNumber(start: number, depth: number): never {
    const written = shorten(this.text.slice(start, this.pos))
    return this.refuse(
      `has the number ${written} at ${this.pathText(depth)}, larger in ` +
        'magnitude than 2^53 - 1, past which numbers lose precision; ' +
        'send large ids as strings',
    )
  }

  private syntaxError(problem: string): never {
    return this.refuse(`is not JSON: ${problem} at position ${this.pos}`)
  }

  private refuse(problem: string): never {
    throw new HttpError('invalid_json', `the request body ${problem}`)
  }

  private pathText(depth: number): string {
    return formatPath(this.path.slice(0, depth))
  }
}

// True when the character at `index` follows an odd run of backslashes.
function isEscaped(text: string, index: number): boolean {
  let backslashes = 0
  while (text.charCodeAt(index - 1 - backslashes) === BACKSLASH) {
    backslashes += 1
  }
  return backslashes % 2 === 1
}

function isDigit(code: number): boolean {
  return code >= DIGIT_0 && code <= DIGIT_9
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/

/** Writes a path as `$.a["b c"][0]`, each key cut to 64 characters. */
function formatPath(steps: readonly PathStep[]): string {
  let out = '$'
  for (const step of steps) {
    if (typeof step === 'number') out += `[${step}]`
    else if (IDENTIFIER.test(step) && step.length <= 64) out += `.${step}`
    else out += `[${JSON.stringify(shorten(step))}]`
  }
  return out
}

function shorten(text: string): string {
  return text.length <= 64 ? text : `${text.slice(0, 61)}...`
}
