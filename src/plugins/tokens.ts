import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { type Clock, systemClock } from '../tokens/clock.js'
import { createTokenManager, type TokenManager } from '../tokens/manager.js'
import { createMint } from '../upstreams/index.js'

declare module 'fastify' {
  interface FastifyInstance {
    tokens: TokenManager
    /** Set when shutdown begins: readiness turns 503 while in-flight requests finish. */
    draining: boolean
    /** The token manager's time, so that answers (expires_in) and metrics agree with it. */
    clock: Clock
  }
}

export interface TokensOptions {
  clock?: Clock
  random?: () => number
}

/** How long in-flight requests may wait on a mint after shutdown begins before upstream calls are cut. */
const DRAIN_MS = 5_000

async function tokensPlugin(fastify: FastifyInstance, opts: TokensOptions) {
  const { config } = fastify
  const manager = createTokenManager({
    credentials: fastify.broker.config.credentials.values(),
    store: fastify.store,
    mintFor: (credential) =>
      createMint(credential, { dispatcher: fastify.dispatcher, timeoutMs: config.UPSTREAM_TIMEOUT_MS }),
    log: fastify.log.child({ component: 'tokens' }),
    refreshMargin: config.REFRESH_MARGIN,
    upstreamTimeoutMs: config.UPSTREAM_TIMEOUT_MS,
    clock: opts.clock,
    random: opts.random,
    events: fastify.metrics.events,
  })
  fastify.decorate('tokens', manager)
  fastify.decorate('draining', false)
  fastify.decorate('clock', opts.clock ?? systemClock)

  // Warm-up runs after the server is up, so /healthz answers and /readyz says "starting" meanwhile.
  fastify.addHook('onReady', async () => {
    manager.start().catch((err: unknown) => fastify.log.error({ err }, 'warm-up failed'))
  })
  fastify.addHook('preClose', async () => {
    fastify.draining = true
    manager.drain()
    setTimeout(() => void manager.close(), DRAIN_MS).unref()
  })
  fastify.addHook('onClose', async () => {
    await manager.close()
  })
}

export default fp(tokensPlugin, {
  name: 'tokens',
  dependencies: ['broker-config', 'token-store', 'undici-dispatcher', 'metrics'],
})
