import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import type { ManagerEvents } from '../tokens/manager.js'
import { type RequestCounter, requestCounter } from './request-counts.js'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: { registry: Registry; events: ManagerEvents; requests: RequestCounter }
  }
}

/**
 * Prometheus metrics on a registry of the app's own (several apps can live in one test process).
 * Gauges about tokens and the store are read from the live objects at scrape time, so the hot
 * path never touches a metric.
 */
async function metricsPlugin(fastify: FastifyInstance) {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })

  const mints = new Counter({
    name: 'token_broker_mints_total',
    help: 'Upstream token requests, by credential and outcome (success, rejected, timeout, network, unavailable, malformed)',
    labelNames: ['credential', 'outcome'] as const,
    registers: [registry],
  })
  const latency = new Histogram({
    name: 'token_broker_upstream_request_duration_seconds',
    help: 'Duration of upstream token requests',
    labelNames: ['type', 'outcome'] as const,
    buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  })
  /** A gauge with one series per credential, read from the token manager at scrape time. */
  const perCredential = (name: string, help: string, value: (id: string, now: number) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['credential'] as const,
      registers: [registry],
      collect() {
        this.reset()
        const now = fastify.clock.now()
        for (const id of fastify.tokens.ids()) this.set({ credential: id }, value(id, now))
      },
    })
  perCredential(
    'token_broker_token_remaining_seconds',
    'Remaining lifetime of the token held for each credential (0 when none is held)',
    (id, now) => {
      const { expiresAt } = fastify.tokens.status(id)
      return expiresAt === undefined ? 0 : Math.max(0, (expiresAt - now) / 1000)
    },
  )
  perCredential(
    'token_broker_credential_failing',
    '1 when the last attempt to get a token for the credential failed',
    (id) => (fastify.tokens.status(id).state === 'failing' ? 1 : 0),
  )
  perCredential(
    'token_broker_credential_secret_index',
    'The 0-based index of the secret in use for each credential (above 0: a rotation is half done)',
    (id) => fastify.tokens.status(id).secret,
  )
  new Gauge({
    name: 'token_broker_store_up',
    help: '1 when the token store is reachable (always 1 for the in-memory store)',
    labelNames: ['kind'] as const,
    registers: [registry],
    collect() {
      this.reset()
      const status = fastify.store.status()
      this.set({ kind: status.kind }, status.state === 'ok' ? 1 : 0)
    },
  })
  new Gauge({
    name: 'token_broker_ready',
    help: '1 when the broker reports ready',
    registers: [registry],
    collect() {
      this.set(fastify.tokens.started && !fastify.draining ? 1 : 0)
    },
  })

  const events: ManagerEvents = {
    upstreamAttempt(credential, outcome, durationMs) {
      mints.inc({ credential: credential.id, outcome })
      latency.observe({ type: credential.type, outcome }, durationMs / 1000)
    },
  }
  fastify.decorate('metrics', { registry, events, requests: requestCounter(registry) })
}

export default fp(metricsPlugin, { name: 'metrics' })
