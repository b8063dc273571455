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
  if (segments === undefined) return { kind: 'none' }
  const candidates = ROUTES.flatMap((route) => {
    const params = matchPath(route.path, segments)
    return params ? [{ route, params }] : []
  })
  if (candidates.length === 0) return { kind: 'none' }
  // A literal segment outranks a parameter: `/api/messages/sms` is the send
  // route (POST only, so GET is 405), not message "sms".
  const literals = Math.max(...candidates.map((c) => literalCount(c.route)))
  const matching = candidates.filter((c) => literalCount(c.route) === literals)
  const wanted = method === 'HEAD' ? 'GET' : method
  const found = matching.find((c) => c.route.method === wanted)
  if (found) return { kind: 'found', ...found }
  const allow = matching.flatMap((c) =>
    c.route.method === 'GET' ? ['GET', 'HEAD'] : [c.route.method],
  )
  return { kind: 'wrong_method', allow }
}

function literalCount(route: Route): number {
  return route.path.filter((part) => !part.startsWith(':')).length
}

function splitPath(pathname: string): string[] | undefined {
  const trimmed = pathname.length > 1 ? pathname.replace(/\/$/, '') : pathname
  try {
    return trimmed
      .split('/')
      .slice(1)
      .map((part) => decodeURIComponent(part))
  } catch {
    return undefined
  }
}

function matchPath(
  pattern: readonly string[],
  segments: readonly string[],
): Record<string, string> | undefined {
  if (pattern.length !== segments.length) return undefined
  const params: Record<string, string> = {}
  for (const [index, part] of pattern.entries()) {
    const segment = segments[index] ?? ''
    if (part.startsWith(':')) {
      if (segment === '') return undefined
      params[part.slice(1)] = segment
    } else if (part !== segment) {
      return undefined
    }
  }
  return params
}
