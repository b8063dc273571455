import {
  formatPrometheusText,
  type Parley,
  PROMETHEUS_TEXT_CONTENT_TYPE,
} from '@parley/core'
import type { HandlerInput, HandlerResult } from './handlers.js'
import { chooseMetricsFormat } from './metrics-format.js'

// The answer depends on Accept: caches must keep the forms apart.
const VARY = { Vary: 'Accept' } as const

/**
 * `GET /metrics`: the JSON document, or the same counters with their
 * labels plus the gauges in the Prometheus text format, as negotiated.
 */
export async function metricsResponse(
  parley: Parley,
  input: HandlerInput,
): Promise<HandlerResult> {
  const format = chooseMetricsFormat(input.query, input.headers.accept)
  if (format === 'json') {
    return { status: 200, body: parley.metrics.snapshot(), headers: VARY }
  }
  const text = formatPrometheusText(await parley.metrics.collect())
  return {
    status: 200,
    body: undefined,
    text: { contentType: PROMETHEUS_TEXT_CONTENT_TYPE, body: text },
    headers: VARY,
  }
}
