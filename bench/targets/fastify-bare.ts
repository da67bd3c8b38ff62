import { readFileSync } from 'node:fs'
import Fastify from 'fastify'
import { serverOptions } from '../../src/app.js'
import { loggerOptions } from '../../src/log/options.js'

/**
 * The ceiling for the broker: a bare Fastify route answering the bytes of a captured broker token
 * response (same body, content-type and cache-control), with no auth, hooks, schema or logging.
 * With BENCH_FASTIFY_AS_BROKER=1 the same route on the broker's Fastify settings and pino logger
 * (request lines off, as at LOG_LEVEL=info): what the framework costs before the broker does anything.
 * Env: PORT, BENCH_BODY_FILE, BENCH_CONTENT_TYPE, BENCH_FASTIFY_AS_BROKER.
 */
const body = readFileSync(process.env.BENCH_BODY_FILE ?? '', 'utf8')
const contentType = process.env.BENCH_CONTENT_TYPE ?? 'application/json; charset=utf-8'

const app =
  process.env.BENCH_FASTIFY_AS_BROKER === '1'
    ? Fastify({ ...serverOptions('info'), logger: loggerOptions('info'), keepAliveTimeout: 65_000 })
    : Fastify({ logger: false, keepAliveTimeout: 65_000 })
app.get('/v1/tokens/:credential', (_request, reply) => {
  reply.header('cache-control', 'no-store').type(contentType).send(body)
})

const stop = () => void app.close().finally(() => process.exit(0))
process.once('SIGTERM', stop)
process.once('SIGINT', stop)

await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' })
