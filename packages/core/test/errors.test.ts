import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import {
  isParleyError,
  isValidationError,
  NoRouteError,
  NotFoundError,
  ParleyError,
  ValidationError,
} from '../src/index.js'

describe('isParleyError', () => {
  it('recognizes every error core throws on purpose, and nothing else', () => {
    expect(isParleyError(new NotFoundError('message', '7'))).toBe(true)
    expect(isParleyError(new ParleyError('unavailable', 'down'))).toBe(true)
    expect(isParleyError(new Error('not ours'))).toBe(false)
    expect(isParleyError({ code: 'not_found' })).toBe(false)
  })

  it('narrows to one code when given it', () => {
    const error: unknown = new NoRouteError('email')

    expect(isParleyError(error, 'no_route')).toBe(true)
    expect(isParleyError(error, 'not_found')).toBe(false)
    if (isParleyError(error, 'no_route')) {
      const code: 'no_route' = error.code
      expect(code).toBe('no_route')
    }
  })
})

describe('isValidationError', () => {
  it('recognizes a validation error with its field details', () => {
    const error: unknown = new ValidationError([
      { field: 'to', message: 'not a phone number' },
    ])

    expect(isValidationError(error)).toBe(true)
    expect(isValidationError(new NotFoundError('message', '7'))).toBe(false)
    if (isValidationError(error)) {
      expect(error.details.map((detail) => detail.field)).toEqual(['to'])
      expect(error.code).toBe('validation_failed')
      expect(error.name).toBe('ValidationError')
    }
  })
})

describe('errors of another copy of the package', () => {
  // The built ESM and CommonJS entries are two copies with distinct
  // classes, as two installed versions would be (npm test builds first).
  const dist = new URL('../dist/', import.meta.url)
  const cjs = createRequire(import.meta.url)(
    fileURLToPath(new URL('index.cjs', dist)),
  ) as typeof import('../src/index.js')

  it('are recognized by the guards, though instanceof misses them', async () => {
    const esm = (await import(
      new URL('index.js', dist).href
    )) as typeof import('../src/index.js')
    const fromCjs = new cjs.ValidationError([{ field: 'to', message: 'bad' }])

    expect(fromCjs instanceof esm.ValidationError).toBe(false)
    expect(esm.isParleyError(fromCjs)).toBe(true)
    expect(esm.isParleyError(fromCjs, 'validation_failed')).toBe(true)
    expect(esm.isParleyError(fromCjs, 'not_found')).toBe(false)
    expect(esm.isValidationError(fromCjs)).toBe(true)
    expect(isParleyError(new cjs.NoRouteError('email'), 'no_route')).toBe(true)
  })

  it('keep their class names in the CommonJS build', () => {
    expect(cjs.ValidationError.name).toBe('ValidationError')
    expect(String(new cjs.NoRouteError('email'))).toMatch(/^NoRouteError: /)
  })

  it('are not faked by an object that merely has a code', () => {
    const lookalike = Object.assign(new Error('x'), { code: 'no_route' })

    expect(isParleyError(lookalike)).toBe(false)
    expect(isValidationError({ code: 'validation_failed' })).toBe(false)
  })
})
