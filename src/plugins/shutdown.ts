import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { awaitingRequest } from '../http/connections.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Set when shutdown begins: readiness turns 503 while in-flight requests finish. */
    draining: boolean
  }
}

/** The whole shutdown, from the signal to the exit; orchestrators commonly kill after 10 s. */
export const SHUTDOWN_BUDGET_MS = 10_000

/**
 * Each phase's bound. Their sum stays clearly under the budget, so every close step runs even when
 * a caller or a dependency does not cooperate, and the process exits 0 before close-with-grace
 * gives up on it (exit 1 at the budget).
 */
export const PHASE_MS = {
  /** Requests already received finish, and may still wait on a mint. */
  inFlight: 4_000,
  /** Upstream calls are cut; whatever connection remains after this is closed. */
  upstreamCut: 1_000,
  /** The token manager settles: mints unwind and release their fleet locks. */
  tokens: 1_000,
  /** Redis is asked to quit (QUIT, then disconnect). */
  store: 1_500,
  /** The upstream connection pool closes, or is destroyed. */
  pool: 1_000,
} as const

/** Left over in the worst case for the work between phases (hooks, log lines, the exit itself). */
export const SHUTDOWN_MARGIN_MS = 1_000

/** The longest shutdown the phases allow when every one of them runs to its bound. */
export const WORST_CASE_SHUTDOWN_MS = Object.values(PHASE_MS).reduce((sum, ms) => sum + ms, 0)

if (WORST_CASE_SHUTDOWN_MS + SHUTDOWN_MARGIN_MS > SHUTDOWN_BUDGET_MS) {
  throw new Error('shutdown phases exceed the shutdown budget: shrink a phase')
}

/** While draining, keep-alive connections are closed as soon as they go idle. */
const IDLE_SWEEP_MS = 100

export interface ShutdownOptions {
  /** Whether the upstream pool was made by the app (an injected one is its owner's to close). */
  ownsDispatcher: boolean
}

type Outcome = 'done' | 'late' | 'failed'

/** Runs `work`, giving up waiting after `ms`: a phase never holds the ones after it. */
async function bounded(ms: number, work: () => Promise<unknown>): Promise<Outcome> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<Outcome>((resolve) => {
    timer = setTimeout(() => resolve('late'), ms)
  })
  const outcome = await Promise.race([
    work().then(
      () => 'done' as const,
      () => 'failed' as const,
    ),
    late,
  ])
  clearTimeout(timer)
  return outcome
}

/**
 * Shutdown, in order, as `fastify.close()` runs it (server.ts on SIGTERM/SIGINT, tests directly):
 *
 * 1. readiness answers 503 "draining"; background refreshes stop;
 * 2. connections without a finished request (nothing sent, stuck mid-headers or mid-body) are
 *    closed, idle keep-alive connections as they go idle; requests already received finish
 *    (Fastify stops accepting and waits for them), for at most `inFlight`;
 * 3. then upstream calls are cut (those requests answer 503) and, `upstreamCut` later, whatever
 *    connection remains is closed;
 * 4. the token manager settles (`tokens`): in-flight mints unwind and release their fleet locks;
 * 5. Redis quits; 6. the upstream pool closes.
 */
async function shutdown(fastify: FastifyInstance, opts: ShutdownOptions) {
  fastify.decorate('draining', false)
  const log = fastify.log.child({ component: 'shutdown' })
  const timers: NodeJS.Timeout[] = []

  fastify.addHook('preClose', async () => {
    fastify.draining = true
    fastify.tokens.drain()

    let stuck = 0
    for (const socket of fastify.connections) {
      if (awaitingRequest(socket)) {
        socket.destroy()
        stuck++
      }
    }
    log.info({ closed: stuck, open: fastify.connections.size }, 'draining')

    const sweep = setInterval(() => fastify.server.closeIdleConnections(), IDLE_SWEEP_MS)
    const cut = setTimeout(() => {
      log.warn('requests still in flight: cutting upstream calls')
      void fastify.tokens.close()
    }, PHASE_MS.inFlight)
    const force = setTimeout(
      () => fastify.server.closeAllConnections(),
      PHASE_MS.inFlight + PHASE_MS.upstreamCut,
    )
    for (const timer of [sweep, cut, force]) {
      timer.unref()
      timers.push(timer)
    }
  })

  // Runs once the listener has closed: every request has been answered or its connection closed.
  fastify.addHook('onClose', async () => {
    for (const timer of timers) clearTimeout(timer)
    const locks = await bounded(PHASE_MS.tokens, () => fastify.tokens.close())
    const store = await bounded(PHASE_MS.store, () => fastify.store.close())
    let pool: Outcome | 'not owned' = 'not owned'
    if (opts.ownsDispatcher) {
      pool = await bounded(PHASE_MS.pool, () => fastify.dispatcher.close())
      if (pool !== 'done') await fastify.dispatcher.destroy().catch(() => {})
    }
    log.info({ locks, store, pool }, 'shutdown complete')
  })
}

export default fp(shutdown, {
  name: 'shutdown',
  dependencies: ['http', 'tokens', 'token-store', 'undici-dispatcher'],
})
