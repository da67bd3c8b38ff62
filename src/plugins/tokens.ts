import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Clock } from '../core/clock.js'
import { createTokenManager, type TokenManager } from '../tokens/manager.js'
import { type ClockOffsets, createClockOffsets } from '../upstreams/clock-offset.js'
import { createMint } from '../upstreams/index.js'
import { createOriginLimiter } from '../upstreams/limiter.js'

declare module 'fastify' {
  interface FastifyInstance {
    tokens: TokenManager
    /** The token manager's time, so that answers (expires_in) and metrics agree with it. */
    clock: Clock
    /** The upstreams' clocks relative to ours, per credential, as their `Date` headers show them. */
    upstreamClocks: ClockOffsets
  }
}

export interface TokensOptions {
  random?: () => number
}

async function tokensPlugin(fastify: FastifyInstance, opts: TokensOptions) {
  const { config } = fastify
  const upstreamClocks = createClockOffsets(fastify.log.child({ component: 'upstream' }))
  // The fleet's time (Redis TIME with Redis), which is the injected clock when a test drives time.
  const clock = fastify.fleetClock
  // One for the replica: UPSTREAM_CONCURRENCY per upstream origin, whichever credentials ask.
  const limiter = createOriginLimiter(config.UPSTREAM_CONCURRENCY)
  const manager = createTokenManager({
    credentials: fastify.broker.config.credentials.values(),
    store: fastify.store,
    mintFor: (credential) =>
      createMint(credential, {
        dispatcher: fastify.dispatcher,
        timeoutMs: config.UPSTREAM_TIMEOUT_MS,
        clock,
        limiter,
        clockOffset: upstreamClocks.observer(credential.id, new URL(credential.baseUrl).origin),
      }),
    log: fastify.log.child({ component: 'tokens' }),
    refreshMargin: config.REFRESH_MARGIN,
    upstreamTimeoutMs: config.UPSTREAM_TIMEOUT_MS,
    clock,
    random: opts.random,
    events: fastify.metrics.events,
    tracer: fastify.tracer,
  })
  fastify.decorate('tokens', manager)
  fastify.decorate('clock', clock)
  fastify.decorate('upstreamClocks', upstreamClocks)

  // Warm-up runs after the server is up, so /healthz answers and /readyz says "starting" meanwhile.
  fastify.addHook('onReady', async () => {
    manager.start().catch((err: unknown) => fastify.log.error({ err }, 'warm-up failed'))
  })
  // Drained and closed by the shutdown plugin.
}

export default fp(tokensPlugin, {
  name: 'tokens',
  dependencies: ['broker-config', 'token-store', 'undici-dispatcher', 'metrics', 'tracing'],
})
