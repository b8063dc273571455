/**
 * The outcome of checking a credential or a signature: accepted, or
 * rejected with a stable reason (for metrics and tests) and a sentence
 * for the 401 answer. Messages never include secrets, signatures or keys.
 */
export type Verification<Reason extends string> =
  { readonly ok: true } | Rejection<Reason>

/** A failed check: why, as a stable code and as a sentence. */
export interface Rejection<Reason extends string> {
  readonly ok: false
  readonly reason: Reason
  readonly message: string
}

/**
 * Request headers by lower-case name, as `node:http` exposes them in
 * `request.headers`.
 */
export type HeaderBag = Readonly<
  Record<string, string | readonly string[] | undefined>
>

/** The accepted outcome (one shared frozen object). */
export const ACCEPTED: { readonly ok: true } = Object.freeze({ ok: true })

/** Builds a rejection. */
export function rejected<Reason extends string>(
  reason: Reason,
  message: string,
): Rejection<Reason> {
  return { ok: false, reason, message }
}

/**
 * One header's value, trimmed; `undefined` when it is absent, empty, or
 * sent as several separate values that `node:http` kept apart.
 */
export function singleHeader(
  headers: HeaderBag,
  name: string,
): string | undefined {
  const value = headers[name.toLowerCase()]
  if (typeof value !== 'string') return undefined
  const trimmed = value.trim()
  return trimmed === '' ? undefined : trimmed
}
