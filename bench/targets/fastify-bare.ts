import { readFileSync } from 'node:fs'
import Fastify from 'fastify'

/**
 * The ceiling for the broker: a bare Fastify route answering the bytes of a captured broker token
 * response (same body, content-type and cache-control), with no auth, hooks, schema or logging.
 * Env: PORT, BENCH_BODY_FILE, BENCH_CONTENT_TYPE.
 */
const body = readFileSync(process.env.BENCH_BODY_FILE ?? '', 'utf8')
const contentType = process.env.BENCH_CONTENT_TYPE ?? 'application/json; charset=utf-8'

const app = Fastify({ logger: false, keepAliveTimeout: 65_000 })
app.get('/v1/tokens/:credential', (_request, reply) => {
  reply.header('cache-control', 'no-store').type(contentType).send(body)
})

const stop = () => void app.close().finally(() => process.exit(0))
process.once('SIGTERM', stop)
process.once('SIGINT', stop)

await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' })
