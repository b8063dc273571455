/** A test webhook as it goes on the wire, before and after signing. */
export interface WebhookRequest {
  /** Which webhook: `sms` (SMS and MMS) or `email`. */
  readonly family: 'sms' | 'email'
  /**
   * The route, relative to the server's base URL. Signing may add a query
   * (Twilio signs JSON bodies through a `bodySHA256` parameter).
   */
  readonly path: string
  /** The JSON body, serialized once, so a signature covers these bytes. */
  readonly body: string
  /** Headers to send besides the client's own, such as a signature. */
  readonly headers: Readonly<Record<string, string>>
}

/**
 * Signs a test webhook the way its provider would, so that a server that
 * checks webhook signatures accepts it. It signs nothing yet and returns the
 * request as given: a server without webhook secrets accepts that, and one
 * with secrets answers 401.
 */
export function signWebhook(request: WebhookRequest): WebhookRequest {
  // TODO(#4): sign with WEBHOOK_* secrets, the way each provider signs
  // (X-Twilio-Signature for SMS), reading the secrets the server reads, once
  // the server checks signatures.
  return request
}
