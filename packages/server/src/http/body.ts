import type { IncomingMessage } from 'node:http'
import { HttpError } from './http-error.js'

/** Limits on reading one request body. */
export interface BodyLimits {
  /** Most bytes accepted; more is 413. */
  readonly maxBytes: number
  /** Time allowed to receive the whole body, in ms; then 408. */
  readonly timeoutMs: number
}

/**
 * Reads a request body as bytes. Refuses a declared `Content-Length` over
 * the limit before reading anything, stops reading as soon as the limit is
 * passed, and gives up with 408 when the body does not arrive in time.
 */
export function readBody(
  request: IncomingMessage,
  limits: BodyLimits,
): Promise<Buffer> {
  const declared = Number(request.headers['content-length'])
  if (Number.isFinite(declared) && declared > limits.maxBytes) {
    return Promise.reject(tooLarge(limits.maxBytes))
  }
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const finish = (error?: HttpError) => {
      clearTimeout(timer)
      request.off('data', onData)
      request.off('end', onEnd)
      request.off('error', onError)
      if (error) {
        // Stop buffering what is left; the answer closes the connection.
        request.pause()
        reject(error)
      } else {
        resolve(Buffer.concat(chunks, size))
      }
    }
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > limits.maxBytes) finish(tooLarge(limits.maxBytes))
      else chunks.push(chunk)
    }
    const onEnd = () => finish()
    const onError = () =>
      finish(new HttpError('request_timeout', 'the request body was cut short'))
    const timer = setTimeout(
      () =>
        finish(
          new HttpError(
            'request_timeout',
            `the request body did not arrive within ${limits.timeoutMs} ms`,
          ),
        ),
      limits.timeoutMs,
    )
    request.on('data', onData)
    request.on('end', onEnd)
    request.on('error', onError)
  })
}

function tooLarge(maxBytes: number): HttpError {
  return new HttpError(
    'payload_too_large',
    `the request body exceeds the limit of ${maxBytes} bytes`,
  )
}
