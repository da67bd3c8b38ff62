import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'

/**
 * The floor under everything: node:http answering the bytes of a captured broker token response
 * (same body, content-type and cache-control). Env: PORT, BENCH_BODY_FILE, BENCH_CONTENT_TYPE.
 */
const body = readFileSync(process.env.BENCH_BODY_FILE ?? '')
const headers = {
  'content-type': process.env.BENCH_CONTENT_TYPE ?? 'application/json; charset=utf-8',
  'cache-control': 'no-store',
  'content-length': String(body.length),
}

const server = createServer({ keepAliveTimeout: 65_000 }, (_req, res) => {
  res.writeHead(200, headers)
  res.end(body)
})

const stop = () => {
  server.close(() => process.exit(0))
  server.closeAllConnections()
}
process.once('SIGTERM', stop)
process.once('SIGINT', stop)

server.listen(Number(process.env.PORT), '127.0.0.1')
