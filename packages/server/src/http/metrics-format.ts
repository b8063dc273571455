import { HttpError } from './http-error.js'
import { acceptQuality } from './negotiate.js'

/** The two forms `/metrics` is served in. */
export type MetricsFormat = 'json' | 'prometheus'

/**
 * Chooses the form of `/metrics` (DESIGN section 7). `?format=json` or
 * `?format=prometheus` decides outright; otherwise the Prometheus text is
 * served only when `Accept` prefers `text/plain` or
 * `application/openmetrics-text` to `application/json` by q-value, as a
 * Prometheus scraper's default header does. A missing `Accept`, `*\/*` and
 * every tie give JSON. OpenMetrics is not written: a client that prefers
 * it gets the 0.0.4 text, which every Prometheus reads.
 *
 * `format` is read without regard to case. Throws 400 for another
 * `format` and 406 when `Accept` rules out both.
 */
export function chooseMetricsFormat(
  query: URLSearchParams,
  accept: string | undefined,
): MetricsFormat {
  const asked = query.get('format')?.toLowerCase() ?? null
  if (asked === 'json' || asked === 'prometheus') return asked
  if (asked !== null) throw badFormat()
  const json = acceptQuality(accept, 'application', 'json')
  const text = Math.max(
    acceptQuality(accept, 'text', 'plain'),
    acceptQuality(accept, 'application', 'openmetrics-text'),
  )
  if (text > json) return 'prometheus'
  if (json > 0) return 'json'
  throw new HttpError(
    'not_acceptable',
    '/metrics answers application/json or text/plain; allow one in Accept',
  )
}

function badFormat(): HttpError {
  return new HttpError(
    'validation_failed',
    'the query parameter format must be json or prometheus',
    {},
    [{ field: 'format', message: 'must be "json" or "prometheus"' }],
  )
}
