import type { BodyType } from './negotiate.js'

/** What a route does, named so the handler table can be exhaustive. */
export type RouteName =
  | 'send_sms'
  | 'send_email'
  | 'webhook_sms'
  | 'webhook_email'
  | 'list_conversations'
  | 'list_messages'
  | 'get_message'
  | 'metrics'
  | 'openapi'
  | 'healthz'
  | 'readyz'
  | 'sms_status'
  | 'email_events'
  | 'get_mock_config'
  | 'put_mock_config'
  | 'list_dead_letters'
  | 'retry_dead_letter'

/** One method on one path. */
export interface Route {
  readonly name: RouteName
  readonly method: 'GET' | 'POST' | 'PUT'
  /** Path segments; `:id` matches one decimal id segment or anything else. */
  readonly path: readonly string[]
  /** Body media types accepted (POST routes). */
  readonly bodies?: readonly BodyType[]
  /** The handler chooses the answer's media type from `Accept` itself. */
  readonly negotiates?: boolean
}

/** Every route of the API. */
export const ROUTES: readonly Route[] = [
  {
    name: 'send_sms',
    method: 'POST',
    path: ['api', 'messages', 'sms'],
    bodies: ['json'],
  },
  {
    name: 'send_email',
    method: 'POST',
    path: ['api', 'messages', 'email'],
    bodies: ['json'],
  },
  {
    name: 'webhook_sms',
    method: 'POST',
    path: ['api', 'webhooks', 'sms'],
    bodies: ['json', 'form'],
  },
  {
    name: 'webhook_email',
    method: 'POST',
    path: ['api', 'webhooks', 'email'],
    bodies: ['json'],
  },
  { name: 'list_conversations', method: 'GET', path: ['api', 'conversations'] },
  {
    name: 'list_messages',
    method: 'GET',
    path: ['api', 'conversations', ':id', 'messages'],
  },
  { name: 'get_message', method: 'GET', path: ['api', 'messages', ':id'] },
  { name: 'metrics', method: 'GET', path: ['metrics'], negotiates: true },
  { name: 'openapi', method: 'GET', path: ['openapi.json'] },
  { name: 'healthz', method: 'GET', path: ['healthz'] },
  { name: 'readyz', method: 'GET', path: ['readyz'] },
  {
    name: 'sms_status',
    method: 'POST',
    path: ['api', 'webhooks', 'sms', 'status'],
    bodies: ['json', 'form'],
  },
  {
    name: 'email_events',
    method: 'POST',
    path: ['api', 'webhooks', 'email', 'events'],
    bodies: ['json'],
  },
  {
    name: 'get_mock_config',
    method: 'GET',
    path: ['api', 'provider', 'mock', 'config'],
  },
  {
    name: 'put_mock_config',
    method: 'PUT',
    path: ['api', 'provider', 'mock', 'config'],
    bodies: ['json'],
  },
  { name: 'list_dead_letters', method: 'GET', path: ['api', 'dead-letters'] },
  {
    name: 'retry_dead_letter',
    method: 'POST',
    path: ['api', 'dead-letters', ':queue', ':id', 'retry'],
  },
]

/** The outcome of matching a request line against the table. */
export type RouteMatch =
  | {
      readonly kind: 'found'
      readonly route: Route
      readonly params: Readonly<Record<string, string>>
    }
  | { readonly kind: 'wrong_method'; readonly allow: readonly string[] }
  | { readonly kind: 'none' }

/**
 * Finds the route for a method and path. A path that exists under other
 * methods gives their list (for 405 and `Allow`); HEAD matches GET.
 */
export function matchRoute(method: string, pathname: string): RouteMatch {
  const segments = splitPath(pathname)
  if (segments === undefined) return NO_ROUTE
  // A literal segment outranks a parameter: `/api/messages/sms` is the send
  // route (POST only, so GET is 405), not message "sms".
  let literals = -1
  let matching: Route[] = []
  for (const route of ROUTES) {
    if (!pathMatches(route.path, segments)) continue
    const count = literalCount(route)
    if (count > literals) {
      literals = count
      matching = [route]
    } else if (count === literals) {
      matching.push(route)
    }
  }
  if (matching.length === 0) return NO_ROUTE
  const wanted = method === 'HEAD' ? 'GET' : method
  const found = matching.find((route) => route.method === wanted)
  if (found) {
    return { kind: 'found', route: found, params: paramsOf(found, segments) }
  }
  const allow = matching.flatMap((route) =>
    route.method === 'GET' ? ['GET', 'HEAD'] : [route.method],
  )
  return { kind: 'wrong_method', allow }
}

const NO_ROUTE: RouteMatch = { kind: 'none' }
const NO_PARAMS: Readonly<Record<string, string>> = Object.freeze({})

function literalCount(route: Route): number {
  let count = 0
  for (const part of route.path) if (!part.startsWith(':')) count += 1
  return count
}

function splitPath(pathname: string): string[] | undefined {
  const trimmed =
    pathname.length > 1 && pathname.endsWith('/')
      ? pathname.slice(0, -1)
      : pathname
  const parts = trimmed.split('/').slice(1)
  // Most paths have no escapes: nothing to decode.
  if (!trimmed.includes('%')) return parts
  try {
    return parts.map((part) => decodeURIComponent(part))
  } catch {
    return undefined
  }
}

// A parameter matches any segment but the empty one.
function pathMatches(
  pattern: readonly string[],
  segments: readonly string[],
): boolean {
  if (pattern.length !== segments.length) return false
  for (let i = 0; i < pattern.length; i += 1) {
    const part = pattern[i] as string
    const segment = segments[i] as string
    if (part.startsWith(':') ? segment === '' : part !== segment) return false
  }
  return true
}

function paramsOf(
  route: Route,
  segments: readonly string[],
): Readonly<Record<string, string>> {
  let params: Record<string, string> | undefined
  route.path.forEach((part, i) => {
    if (!part.startsWith(':')) return
    params ??= {}
    params[part.slice(1)] = segments[i] as string
  })
  return params ?? NO_PARAMS
}
