/**
 * Request bodies the benchmarks send: valid outbound SMS and inbound SMS
 * webhooks, each from its own sender, so that the per-sender rate limit is
 * not what is measured.
 */

/** The recipient of every benchmark message. */
export const RECIPIENT = '+18045550100'

/**
 * The `n`-th distinct US number (`+1 AAA 555 NNNN`, fictional exchange):
 * ten thousand per area code, 800 area codes.
 *
 * @param {number} n 0-based
 */
export function senderNumber(n) {
  const area = 200 + (Math.floor(n / 10_000) % 800)
  const line = String(n % 10_000).padStart(4, '0')
  return `+1${area}555${line}`
}

/** The JSON body of an outbound SMS from sender `n`. */
export function sendBody(n) {
  return JSON.stringify({
    from: senderNumber(n),
    to: RECIPIENT,
    type: 'sms',
    body: `benchmark message ${n}`,
    attachments: [],
    timestamp: '2026-01-01T00:00:00Z',
  })
}

/** The JSON body of an inbound SMS webhook from sender `n`. */
export function webhookBody(n, providerId = `bench-${n}`) {
  return JSON.stringify({
    from: senderNumber(n),
    to: RECIPIENT,
    type: 'sms',
    messaging_provider_id: providerId,
    body: `benchmark reply ${n}`,
    attachments: [],
    timestamp: '2026-01-01T00:00:00Z',
  })
}
