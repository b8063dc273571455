/**
 * `Expect: 100-continue` (RFC 9110 section 10.1.1). A client that sends it
 * waits for `100 Continue` before the body, so the server can refuse a body
 * it will not take without receiving it. Node's `http` server answers
 * `100 Continue` at once unless a `checkContinue` listener is installed;
 * this module installs one that withholds it from bodies declared larger
 * than the limit.
 */
import type { IncomingMessage, Server } from 'node:http'

/** Options of {@link installCheckContinue}. */
export interface CheckContinueOptions {
  /**
   * The largest body accepted, in bytes (`API_MAX_BODY_BYTES`): a request
   * whose `Content-Length` is larger gets no `100 Continue`.
   */
  readonly maxBodyBytes: number
}

/**
 * Makes `server` answer `Expect: 100-continue` itself. A request whose
 * declared `Content-Length` exceeds `maxBodyBytes` gets no `100 Continue`
 * and `Connection: close`, and goes to the request listener, whose body
 * reader refuses it with 413 before reading a byte (so the refusal passes
 * through the same pipeline as any other: request id, breaker, rate
 * limit, error body). Every other such request is sent `100 Continue` and
 * then handled as usual.
 *
 * @example
 * const server = createServer(createApp(options))
 * installCheckContinue(server, { maxBodyBytes: config.maxBodyBytes })
 */
export function installCheckContinue(
  server: Server,
  options: CheckContinueOptions,
): void {
  const { maxBodyBytes } = checkOptions(options)
  server.on('checkContinue', (request, response) => {
    if (declaredLength(request) > maxBodyBytes) {
      // The body was never asked for: the connection cannot be reused, as
      // the client may still send it after waiting.
      response.setHeader('Connection', 'close')
    } else {
      response.writeContinue()
    }
    server.emit('request', request, response)
  })
}

/** The request's `Content-Length`, or 0 when absent or unreadable. */
export function declaredLength(request: IncomingMessage): number {
  const declared = Number(request.headers['content-length'])
  return Number.isFinite(declared) ? declared : 0
}

function checkOptions(options: CheckContinueOptions): CheckContinueOptions {
  const { maxBodyBytes } = options
  if (Number.isInteger(maxBodyBytes) && maxBodyBytes >= 0) return options
  throw new RangeError(
    `maxBodyBytes must be a whole number >= 0, got ${maxBodyBytes}`,
  )
}
