// The idle-memory reference (bench/idle.ts): a bare Fastify with a pino logger at info and one
// route, on the broker's node flags. Plain JavaScript: under the TypeScript loader, the process
// would carry the loader's own thread and heap into what is measured. Env: PORT.
import Fastify from 'fastify'

const app = Fastify({ logger: { level: 'info' }, keepAliveTimeout: 65_000 })
app.get('/healthz', async () => ({ status: 'ok' }))

const stop = () => void app.close().finally(() => process.exit(0))
process.once('SIGTERM', stop)
process.once('SIGINT', stop)

await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' })
