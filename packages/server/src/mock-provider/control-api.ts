import type { IncomingMessage, ServerResponse } from 'node:http'
import {
  configToJson,
  type MockBehaviourPatch,
  type MockConfigProblem,
  type MockProviderConfig,
  patchFromJson,
} from './behaviour.js'
import { jsonAnswer, readBody, writeAnswer } from './http-io.js'
import type { Answer } from './provider-apis.js'
import type { RequestLogSnapshot } from './request-log.js'

/** What the control API reads and changes. */
export interface ControlTarget {
  config(): MockProviderConfig
  /** Applies a patch; returns its problems, changing nothing if any. */
  configure(patch: MockBehaviourPatch): readonly MockConfigProblem[]
  snapshot(): RequestLogSnapshot
  reset(): void
}

/** The largest `PUT /__mock/config` body read, in bytes. */
const MAX_CONFIG_BYTES = 64 * 1024

/**
 * Serves the control API under `/__mock/`: `GET`/`DELETE /__mock/requests`
 * and `GET`/`PUT /__mock/config`. Errors use Parley's own error body.
 */
export async function serveControl(
  request: IncomingMessage,
  response: ServerResponse,
  path: string,
  target: ControlTarget,
): Promise<void> {
  const method = request.method ?? 'GET'
  let answer: Answer
  if (path === '/__mock/requests') {
    answer = requestsAnswer(method, target)
  } else if (path === '/__mock/config' && method === 'PUT') {
    answer = await putConfig(request, target)
  } else if (path === '/__mock/config') {
    answer =
      method === 'GET'
        ? jsonAnswer(200, configToJson(target.config()))
        : methodNotAllowed('GET, PUT')
  } else {
    answer = jsonAnswer(404, { code: 'not_found', message: `no ${path}` })
  }
  request.resume()
  writeAnswer(response, answer)
}

function requestsAnswer(method: string, target: ControlTarget): Answer {
  if (method === 'GET') return jsonAnswer(200, target.snapshot())
  if (method !== 'DELETE') return methodNotAllowed('GET, DELETE')
  target.reset()
  return { status: 204, headers: {}, body: undefined }
}

async function putConfig(
  request: IncomingMessage,
  target: ControlTarget,
): Promise<Answer> {
  const read = await readBody(request, MAX_CONFIG_BYTES)
  if (read.kind !== 'read') {
    return invalid([{ field: '(body)', message: 'too large or cut short' }])
  }
  const { patch, problems } = patchFromJson(jsonOrUndefined(read.text))
  if (problems.length > 0) return invalid(problems)
  const refused = target.configure(patch)
  if (refused.length > 0) return invalid(refused)
  return jsonAnswer(200, configToJson(target.config()))
}

function jsonOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return undefined
  }
}

function invalid(problems: readonly MockConfigProblem[]): Answer {
  return jsonAnswer(400, {
    code: 'validation_failed',
    message: 'the mock provider settings are invalid',
    details: problems,
  })
}

function methodNotAllowed(allow: string): Answer {
  return jsonAnswer(
    405,
    { code: 'method_not_allowed', message: `allowed: ${allow}` },
    { Allow: allow },
  )
}
