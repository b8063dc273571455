/**
 * The bare node:http server of the accept benchmark: it reads the request
 * body and answers 202 with the JSON a Parley send answers, and does
 * nothing else. Its throughput is the ceiling of any Node HTTP server on
 * this machine. Listens on HOST:PORT (loopback in the benchmarks).
 *
 * With BENCH_WORK_US set it also spins that many microseconds of CPU
 * before each answer: a stand-in for a server that does some work per
 * request, to show what share of the bare server's throughput this
 * machine leaves to any such server (docs/benchmarks.md).
 */
import { createServer } from 'node:http'

let id = 0
const workMs = Number(process.env.BENCH_WORK_US ?? 0) / 1000

function work() {
  if (workMs <= 0) return
  const until = performance.now() + workMs
  while (performance.now() < until) {
    // spinning on purpose: the stand-in's CPU time per request
  }
}

const server = createServer((request, response) => {
  if (request.url === '/healthz') {
    response.writeHead(200, { 'content-type': 'application/json' })
    response.end('{"status":"ok"}')
    return
  }
  request.on('data', () => undefined)
  request.on('end', () => {
    work()
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
