import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { Parley, RateLimitDecision } from '@parley/core'
import type { EdgeConfig } from '../edge-config.js'
import { clientIp, rateLimitKey } from './client-ip.js'
import type { GlobalBreaker } from './global-breaker.js'
import { HttpError } from './http-error.js'
import type { RouteName } from './routes.js'
import {
  bearerChallenge,
  checkBearer,
  publicUrl,
  verifySendGridSignature,
  verifyStandardWebhook,
  verifyTwilioSignature,
} from './security/signatures.js'

/** The edge's settings and state, shared by every request. */
export interface Edge {
  readonly config: EdgeConfig
  readonly breaker: GlobalBreaker
}

/** Which part of the URL space a path is in. */
export type PathKind = 'api' | 'webhook' | 'operations'

/**
 * API paths are under /api; webhooks under /api/webhooks. The path is
 * read with its percent-escapes decoded, as the router reads it, so that
 * `/%61pi/conversations` (which the router serves as the conversations
 * list) cannot skip the breaker, the limits or the API key. A path that
 * does not decode matches no route; it counts as an API path (fail closed).
 */
export function pathKindOf(pathname: string): PathKind {
  const path = decodedPath(pathname)
  if (path === undefined) return 'api'
  if (path === '/api/webhooks' || path.startsWith('/api/webhooks/')) {
    return 'webhook'
  }
  if (path === '/api' || path.startsWith('/api/')) return 'api'
  return 'operations'
}

function decodedPath(pathname: string): string | undefined {
  // Most paths have no escapes: nothing to decode.
  if (!pathname.includes('%')) return pathname
  try {
    return pathname.split('/').map(decodeURIComponent).join('/')
  } catch {
    return undefined
  }
}

/**
 * Applies the per-client limit (API or webhook) before the body is read,
 * so that floods of bad bodies are metered too. Throws 429 when refused.
 */
export async function limitClient(
  parley: Parley,
  edge: Edge,
  request: IncomingMessage,
  kind: 'api' | 'webhook',
): Promise<RateLimitDecision> {
  const key = clientKey(edge, request)
  const decision = await parley.ingress.limitClient(key, kind)
  if (decision.allowed) return decision
  throw new RateLimitedHttpError(decision)
}

// Without trusted proxies the client is the connection's peer, whatever
// X-Forwarded-For says: its key is worked out once per connection instead
// of once per request.
const peerKeys = new WeakMap<Socket, string>()

function clientKey(edge: Edge, request: IncomingMessage): string {
  const { trustedProxies } = edge.config
  const socket = request.socket
  const byPeer = trustedProxies.length === 0
  const known = byPeer ? peerKeys.get(socket) : undefined
  if (known !== undefined) return known
  const peer = socket.remoteAddress
  const forwarded = request.headers['x-forwarded-for']
  const key = rateLimitKey(clientIp(peer, forwarded, trustedProxies))
  if (byPeer && peer !== undefined) peerKeys.set(socket, key)
  return key
}

/** A 429 that carries the decision for its headers. */
export class RateLimitedHttpError extends HttpError {
  constructor(readonly decision: RateLimitDecision) {
    super(
      'rate_limited',
      `too many requests; retry after ${decision.retryAfterSeconds} s`,
    )
  }
}

/**
 * With API keys configured, every API route needs `Authorization: Bearer`
 * with one of them (webhooks prove themselves with signatures instead).
 * Returns the key's id, which scopes idempotency keys.
 */
export function authenticate(
  edge: Edge,
  request: IncomingMessage,
  kind: PathKind,
): string {
  if (edge.config.apiKeys.length === 0 || kind !== 'api') return '-'
  const check = checkBearer(request.headers.authorization, edge.config.apiKeys)
  if (check.ok) return check.keyId
  throw new HttpError('unauthorized', check.message, {
    'WWW-Authenticate': bearerChallenge(check.reason),
  })
}

/**
 * Checks a webhook's signature when its secret is configured: Twilio's on
 * SMS webhooks and status callbacks, Standard Webhooks on email webhooks,
 * SendGrid's on email event callbacks. Throws 401 when it fails.
 */
export function verifyWebhook(
  edge: Edge,
  route: RouteName,
  request: IncomingMessage,
  rawBody: Buffer,
): void {
  const result = signatureCheck(edge, route, request, rawBody)
  if (!result || result.ok) return
  throw new HttpError('unauthorized', `webhook signature: ${result.message}`, {
    'WWW-Authenticate': 'Signature realm="parley-webhooks"',
  })
}

function signatureCheck(
  edge: Edge,
  route: RouteName,
  request: IncomingMessage,
  rawBody: Buffer,
) {
  const { smsWebhookToken, emailWebhookSecret, sendgridPublicKey } = edge.config
  switch (route) {
    case 'webhook_sms':
    case 'sms_status':
      if (smsWebhookToken === undefined) return undefined
      return verifyTwilioSignature({
        authToken: smsWebhookToken,
        url: calledUrl(edge, request),
        signature: headerText(request, 'x-twilio-signature'),
        contentType: request.headers['content-type'] ?? '',
        rawBody,
      })
    case 'webhook_email':
      if (emailWebhookSecret === undefined) return undefined
      return verifyStandardWebhook({
        secret: emailWebhookSecret,
        headers: request.headers,
        rawBody,
      })
    case 'email_events':
      if (sendgridPublicKey === undefined) return undefined
      return verifySendGridSignature({
        publicKey: sendgridPublicKey,
        headers: request.headers,
        rawBody,
      })
    default:
      return undefined
  }
}

// The URL the provider called: behind a proxy it is API_PUBLIC_URL's.
function calledUrl(edge: Edge, request: IncomingMessage): string {
  const encrypted = (request.socket as { encrypted?: boolean }).encrypted
  return publicUrl(request.url ?? '/', {
    apiPublicUrl: edge.config.publicUrl,
    hostHeader: request.headers.host,
    protoFromSocket: encrypted ? 'https' : 'http',
  })
}

function headerText(
  request: IncomingMessage,
  name: string,
): string | undefined {
  const value = request.headers[name]
  return Array.isArray(value) ? value[0] : value
}
