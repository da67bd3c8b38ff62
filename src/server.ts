import closeWithGrace from 'close-with-grace'
import Fastify from 'fastify'
import app, { httpsOptions, serverOptions } from './app.js'
import { LOG_LEVELS, withoutEmpty } from './config/env.js'
import { describeStartupError } from './config/errors.js'
import { parseTrustProxy, type TrustProxy } from './config/network.js'
import { type ListenerTls, readListenerTls } from './config/tls.js'
import { loggerOptions } from './log/options.js'
import { SHUTDOWN_BUDGET_MS } from './plugins/shutdown.js'

/** How often rotated secret files are noticed without a SIGHUP. */
const SECRET_POLL_MS = 30_000

// The logger and trustProxy are needed before @fastify/env validates the environment; read them
// leniently here and let the schema refuse bad values a moment later, with a clear message. Empty
// variables count as unset here exactly as in the app.
const env = withoutEmpty(process.env)
const level = (LOG_LEVELS as readonly string[]).includes(env.LOG_LEVEL ?? '') ? env.LOG_LEVEL! : 'info'
let trustProxy: TrustProxy = false
try {
  trustProxy = parseTrustProxy(env.TRUST_PROXY ?? 'false')
} catch {
  // Refused below by the schema check with its own message.
}

// Fastify takes HTTPS at construction; the app re-reads the same files to rotate them (plugins/tls.ts).
let tls: ListenerTls | undefined
try {
  tls = await readListenerTls(env)
} catch (err) {
  process.stderr.write(`token-broker: ${describeStartupError(err)}\n`)
  process.exit(1)
}

const fastify = Fastify({
  ...serverOptions(level),
  ...(tls === undefined ? {} : httpsOptions(tls)),
  logger: loggerOptions(level),
  trustProxy,
  // Internal callers keep connections open; outlive common load-balancer idle timeouts.
  keepAliveTimeout: 65_000,
})

try {
  await fastify.register(app, { env, secretPollMs: SECRET_POLL_MS })
  await fastify.ready()
} catch (err) {
  process.stderr.write(`token-broker: ${describeStartupError(err)}\n`)
  process.exit(1)
}

// Rotation without restart: `kill -HUP <pid>` re-reads the config file and every secret.
process.on('SIGHUP', () => void fastify.reloadConfig('SIGHUP'))

// Shutdown's phases and their bounds are in plugins/shutdown.ts; past the budget the process exits 1.
// close-with-grace would treat SIGHUP as a shutdown signal; here it means reload.
closeWithGrace({ delay: SHUTDOWN_BUDGET_MS, skip: ['SIGHUP'] }, async ({ signal, err }) => {
  if (err) fastify.log.error({ err }, 'closing after an unexpected error')
  else fastify.log.info({ signal }, 'shutting down')
  await fastify.close()
})

try {
  await fastify.listen({ port: fastify.config.PORT, host: fastify.config.HOST })
} catch (err) {
  process.stderr.write(
    `token-broker: cannot listen on ${fastify.config.HOST}:${fastify.config.PORT}: ${(err as Error).message}\n`,
  )
  process.exit(1)
}
