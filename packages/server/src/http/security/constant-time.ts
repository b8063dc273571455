import { createHash, timingSafeEqual } from 'node:crypto'

/** The SHA-256 digest of some bytes, or of a string as UTF-8. */
export function sha256(data: Uint8Array | string): Buffer {
  return createHash('sha256').update(data).digest()
}

/**
 * Compares two secrets (or values derived from one) without leaking where
 * they differ. Both sides are hashed to 32 bytes first, so
 * `timingSafeEqual` always sees equal lengths and the time taken says
 * nothing about the length or content of either side. Strings count as
 * UTF-8.
 */
export function constantTimeEqual(
  a: Uint8Array | string,
  b: Uint8Array | string,
): boolean {
  return timingSafeEqual(sha256(a), sha256(b))
}
