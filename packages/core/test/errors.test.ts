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
