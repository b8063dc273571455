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

/** Where the signing secrets and the signed URL come from. */
export interface SigningContext {
  /** The server's base URL the request goes to (`--url`). */
  readonly baseUrl: string
  /**
   * The environment: `WEBHOOK_SMS_AUTH_TOKEN` and `WEBHOOK_EMAIL_SECRET`
   * (the secrets the server checks with) and `API_PUBLIC_URL` (the URL the
   * server believes it was called at, when set).
   */
  readonly env: Readonly<Record<string, string | undefined>>
}

/**
 * Signs a test webhook the way its provider would, with the secrets the
 * server reads, so that a server that checks signatures accepts it: an
 * SMS webhook gets Twilio's `X-Twilio-Signature` (over the URL with the
 * body's `bodySHA256`), an email webhook the Standard Webhooks headers.
 * Without the family's secret the request goes unsigned.
 */
export async function signWebhook(
  request: WebhookRequest,
  context: SigningContext,
): Promise<WebhookRequest> {
  const token = context.env.WEBHOOK_SMS_AUTH_TOKEN?.trim()
  const secret = context.env.WEBHOOK_EMAIL_SECRET?.trim()
  if (request.family === 'sms' && token) {
    return signTwilio(request, context, token)
  }
  if (request.family === 'email' && secret) {
    const { signStandardWebhook } = await import('@parley/server')
    const headers = signStandardWebhook({ secret, rawBody: request.body })
    return { ...request, headers: { ...request.headers, ...headers } }
  }
  return request
}

async function signTwilio(
  request: WebhookRequest,
  context: SigningContext,
  authToken: string,
): Promise<WebhookRequest> {
  const { signTwilioRequest, TWILIO_SIGNATURE_HEADER } =
    await import('@parley/server')
  // The server checks the signature over the URL it believes it was
  // called at: API_PUBLIC_URL's when set, else the URL we call.
  const base = (context.env.API_PUBLIC_URL?.trim() || context.baseUrl).replace(
    /\/+$/,
    '',
  )
  const signed = signTwilioRequest({
    authToken,
    url: `${base}/${request.path.replace(/^\/+/, '')}`,
    contentType: 'application/json',
    rawBody: Buffer.from(request.body),
  })
  const query = new URL(signed.url).search
  return {
    ...request,
    path: request.path.split('?')[0] + query,
    headers: {
      ...request.headers,
      [TWILIO_SIGNATURE_HEADER]: signed.signature,
    },
  }
}
