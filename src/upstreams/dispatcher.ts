import { Agent } from 'undici'

export interface DispatcherOptions {
  /** Sockets per upstream origin. Token traffic is a few requests per cycle, so a handful is plenty. */
  readonly connections?: number
  readonly keepAliveTimeoutMs?: number
  readonly connectTimeoutMs?: number
}

/**
 * The one connection pool for all upstream calls. Keep-alive spares a TLS handshake when a retry or
 * another credential on the same host follows soon; undici still honours a shorter server keep-alive hint.
 */
export function createDispatcher(opts: DispatcherOptions = {}): Agent {
  const keepAlive = opts.keepAliveTimeoutMs ?? 30_000
  return new Agent({
    connections: opts.connections ?? 8,
    pipelining: 1,
    keepAliveTimeout: keepAlive,
    // A server hint may shorten keep-alive but never stretch it past ours.
    keepAliveMaxTimeout: keepAlive,
    connect: { timeout: opts.connectTimeoutMs ?? 10_000 },
  })
}
