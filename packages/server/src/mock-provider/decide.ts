import type { IncomingHttpHeaders } from 'node:http'
import { scheduledFault } from '@parley/core'
import type { MockBehaviour } from './behaviour.js'
import { jsonAnswer } from './http-io.js'
import type { Answer, MockApi, ParsedBody } from './provider-apis.js'
import type { MockOutcome } from './request-log.js'

/** Who a call is: by Parley's headers or, without them, a counter. */
export interface CallIdentity {
  readonly messageId: string
  readonly attempt: number
  /** Whether the request carried Parley's headers. */
  readonly identified: boolean
}

/** A provider call as the mock server sees it. */
export interface MockCall {
  readonly method: string
  readonly path: string
  readonly headers: IncomingHttpHeaders
  readonly body: ParsedBody
  readonly identity: CallIdentity
}

/** What to do with a call: an answer, or none at all (`answer: null`). */
export interface Decision {
  readonly outcome: MockOutcome
  readonly answer: Answer | null
}

/**
 * Decides the answer to a call of `api`, in this order: a forced status,
 * then the credentials (401) and the account (404), then the seeded fault,
 * then the provider's own checks of the request (400), then success.
 */
export function decide(
  api: MockApi,
  behaviour: MockBehaviour,
  call: MockCall,
): Decision {
  if (call.method !== 'POST') {
    const answer = withHeader(api.error(405), 'Allow', 'POST')
    return { outcome: 'method_not_allowed', answer }
  }
  if (behaviour.forceStatus !== null) {
    return { outcome: 'forced', answer: forced(api, behaviour, call.body) }
  }
  if (!api.authorized(call.headers)) {
    return { outcome: 'unauthorized', answer: api.error(401) }
  }
  const wrongAccount = api.wrongAccount(call.path)
  if (wrongAccount !== undefined) {
    return { outcome: 'not_found', answer: wrongAccount }
  }
  return fault(api, behaviour, call.identity) ?? validated(api, call.body)
}

// `error` alternates 500 and 503 by attempt, so that both are seen and a
// rerun with the same seed answers the same.
function fault(
  api: MockApi,
  behaviour: MockBehaviour,
  { messageId, attempt }: CallIdentity,
): Decision | undefined {
  switch (scheduledFault(behaviour, api.family, messageId, attempt)) {
    case 'none':
      return undefined
    case 'timeout':
      return { outcome: 'timeout', answer: null }
    case 'error':
      return { outcome: 'error', answer: api.error(attempt % 2 ? 500 : 503) }
    case 'rate_limit':
      return { outcome: 'rate_limit', answer: rateLimited(api, behaviour) }
  }
}

function validated(api: MockApi, body: ParsedBody): Decision {
  const invalid = api.invalid(body)
  if (invalid !== undefined) return { outcome: 'invalid', answer: invalid }
  return { outcome: 'sent', answer: api.success(body) }
}

function forced(api: MockApi, behaviour: MockBehaviour, body: ParsedBody) {
  const status = behaviour.forceStatus ?? 500
  if (status < 400) return api.success(body, status)
  if (status === 429) return rateLimited(api, behaviour)
  return api.error(status)
}

function rateLimited(api: MockApi, behaviour: MockBehaviour): Answer {
  return withHeader(
    api.error(429),
    'Retry-After',
    String(behaviour.retryAfterSecs),
  )
}

function withHeader(answer: Answer, name: string, value: string): Answer {
  return { ...answer, headers: { ...answer.headers, [name]: value } }
}

/** The answer to a path that is neither provider API nor control API. */
export function unknownPath(): Decision {
  const answer = jsonAnswer(404, {
    code: 'not_found',
    message:
      'the mock provider serves POST /2010-04-01/Accounts/{sid}/Messages.json' +
      ', POST /v3/mail/send and /__mock/{config,requests}',
  })
  return { outcome: 'not_found', answer }
}

/** The answer to a body above the size limit. */
export function tooLarge(api: MockApi | undefined): Decision {
  const answer = api?.error(413) ?? jsonAnswer(413, { code: 'too_large' })
  return {
    outcome: 'too_large',
    answer: withHeader(answer, 'Connection', 'close'),
  }
}
