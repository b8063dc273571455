/**
 * The bare node:http server of the accept benchmark: it reads the request
 * body and answers 202 with the JSON a Parley send answers, and does
 * nothing else. Its throughput is the ceiling of any Node HTTP server on
 * this machine. Listens on HOST:PORT (loopback in the benchmarks).
 */
import { createServer } from 'node:http'

let id = 0

const server = createServer((request, response) => {
  if (request.url === '/healthz') {
    response.writeHead(200, { 'content-type': 'application/json' })
    response.end('{"status":"ok"}')
    return
  }
  request.on('data', () => undefined)
  request.on('end', () => {
    id += 1
    const body = JSON.stringify({
      status: 'accepted',
      id: String(id),
      conversation_id: String(id),
    })
    response.writeHead(202, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
    })
    response.end(body)
  })
})

server.listen(Number(process.env.PORT ?? 8080), process.env.HOST ?? '127.0.0.1')
process.once('SIGTERM', () => server.close(() => process.exit(0)))
