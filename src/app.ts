import type { Server } from 'node:http'
import fastifyEnv from '@fastify/env'
import { type FastifyBaseLogger, type FastifyHttpOptions, type FastifyInstance, LogController } from 'fastify'
import fp from 'fastify-plugin'
import type { Dispatcher } from 'undici'
import { EnvSchema, withoutEmpty } from './config/env.js'
import type { EnvSource } from './config/secrets.js'
import type { ListenerTls } from './config/tls.js'
import type { Clock } from './core/clock.js'
import { clientErrorHandler } from './http/client-error.js'
import { HEADERS_TIMEOUT_MS, REQUEST_TIMEOUT_MS, TIMEOUT_CHECK_MS } from './http/connections.js'
import { BODY_LIMIT } from './http/errors.js'
import http from './http/index.js'
import brokerConfig from './plugins/broker-config.js'
import dispatcherPlugin from './plugins/dispatcher.js'
import metricsPlugin from './plugins/metrics.js'
import reloadPlugin from './plugins/reload.js'
import shutdownPlugin from './plugins/shutdown.js'
import storePlugin from './plugins/store.js'
import tlsPlugin from './plugins/tls.js'
import tokensPlugin from './plugins/tokens.js'
import tracingPlugin from './plugins/tracing.js'

export interface AppOptions {
  /** The environment to configure from (server.ts passes process.env; tests pass their own). */
  env: EnvSource
  /** Test seams: time, randomness and the upstream connection pool. */
  clock?: Clock
  random?: () => number
  dispatcher?: Dispatcher
  /** Extra CA certificates (PEM) for upstream TLS, as NODE_EXTRA_CA_CERTS gives the process (tests). */
  upstreamCa?: string
  /** Re-check the config file and secret files this often, in ms (server.ts: 30 s; tests: off). */
  secretPollMs?: number
  /** Describe the routes for openapi.yaml (tools/openapi.ts, with this version); never when serving. */
  openapi?: { version: string }
}

const VERBOSE = new Set(['debug', 'trace'])

/**
 * Fastify settings the app relies on, for server.ts and for tests that build the app. `logLevel` is
 * the logger's level, fixed for the process's life: request lines exist only at debug and trace.
 */
export const serverOptions = (logLevel = 'info') =>
  ({
    bodyLimit: BODY_LIMIT,
    // Long enough that an over-long credential id is refused by its schema (400), not unrouted (404).
    routerOptions: { maxParamLength: 1000 },
    // Keep answering (readiness says "draining") while in-flight work finishes on close.
    return503OnClosing: false,
    // HEAD on a token route would run the whole handler (even a mint) to send no body.
    exposeHeadRoutes: false,
    clientErrorHandler,
    // A slow caller is answered 408 (clientErrorHandler) once these bounds pass; see connections.ts.
    requestTimeout: REQUEST_TIMEOUT_MS,
    http: {
      headersTimeout: HEADERS_TIMEOUT_MS,
      connectionsCheckingInterval: TIMEOUT_CHECK_MS,
      // Node would answer a missing Host with a bare 400; the http plugin answers it in the error shape.
      requireHostHeader: false,
    },
    // The hot path stays quiet, and decided once rather than per request: a pino child per request
    // (with its reqId) costs more than the rest of the hot path, so there is one only when request
    // lines are wanted; otherwise the rare warn/error lines use the app logger.
    ...(VERBOSE.has(logLevel) ? {} : { childLoggerFactory: (logger: FastifyBaseLogger) => logger }),
    logController: new LogController({ disableRequestLogging: !VERBOSE.has(logLevel) }),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array' as const, allErrors: false } },
  }) satisfies FastifyHttpOptions<Server>

/**
 * The HTTPS listener's settings, added to serverOptions() when TLS_CERT_FILE and TLS_KEY_FILE are set
 * (config/tls.ts reads them): server.ts and tests build an HTTPS broker the same way. Fastify hands
 * these to https.createServer in place of `http`, so the Node http settings go in too. With a client
 * CA, every connection is asked for a certificate but none is required at the TLS layer: /v1/*
 * checks it (http/index.ts), while probes reach /healthz, /readyz and /metrics without one.
 */
export const httpsOptions = (tls: ListenerTls) => ({
  https: {
    ...serverOptions().http,
    cert: tls.cert,
    key: tls.key,
    ...(tls.ca === undefined ? {} : { ca: tls.ca, requestCert: true, rejectUnauthorized: false }),
  },
})

/**
 * The broker as a plugin: configuration, infrastructure clients, the token manager and the HTTP
 * API. It never listens; server.ts (the process) and the tests decide how it is served.
 */
async function app(fastify: FastifyInstance, opts: AppOptions) {
  const env = withoutEmpty(opts.env)
  // `env: false`: the given source is the only one; @fastify/env would otherwise merge process.env in.
  await fastify.register(fastifyEnv, { schema: EnvSchema, data: env, env: false })
  await fastify.register(brokerConfig, { env })
  await fastify.register(tlsPlugin, { env })
  await fastify.register(dispatcherPlugin, { dispatcher: opts.dispatcher, upstreamCa: opts.upstreamCa })
  await fastify.register(storePlugin, { clock: opts.clock, random: opts.random })
  await fastify.register(metricsPlugin)
  // Before the token manager (it traces mints) and the routes (its request hook comes first).
  await fastify.register(tracingPlugin)
  await fastify.register(tokensPlugin, { random: opts.random })
  await fastify.register(reloadPlugin, { env, pollMs: opts.secretPollMs })
  // Before the routes: it learns them as they are added.
  if (opts.openapi) await fastify.register((await import('./http/openapi.js')).default, opts.openapi)
  await fastify.register(http)
  await fastify.register(shutdownPlugin, { ownsDispatcher: !opts.dispatcher })
}

export default fp(app, { name: 'token-broker', fastify: '5.x' })
