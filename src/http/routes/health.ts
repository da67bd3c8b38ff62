import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Static } from '@sinclair/typebox'
import { lastErrorBody } from '../failure.js'
import { isoOrNull } from '../present.js'
import { errors, HealthResponse, MetricsResponse, NO_KEY, NotReady, Ready } from '../schemas.js'

const healthRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get(
    '/healthz',
    {
      schema: {
        operationId: 'health',
        tags: ['operations'],
        summary: 'Liveness',
        description: 'Answers 200 for as long as the process runs. It does not look at Adobe or Redis.',
        security: NO_KEY,
        response: { 200: HealthResponse, ...errors(403, 500) },
      },
    },
    async () => ({
      status: 'ok' as const,
    }),
  )

  /** 503 until warm-up has tried every credential and while draining; 200 even if some credentials fail. */
  fastify.get(
    '/readyz',
    {
      schema: {
        operationId: 'ready',
        tags: ['operations'],
        summary: 'Readiness',
        description:
          'Answers 503 (`starting`) until the start-up warm-up has tried every credential. After that it ' +
          'answers 200 (`ready`), even when some credentials are failing, because the others can still be ' +
          'served. Check `credentials` to see which ones fail. During shutdown it answers 503 (`draining`).',
        security: NO_KEY,
        response: { 200: Ready, 503: NotReady, ...errors(403, 500) },
      },
    },
    async (_request, reply) => {
      const { tokens } = fastify
      const status: 'starting' | 'ready' | 'draining' = fastify.draining
        ? 'draining'
        : tokens.started
          ? 'ready'
          : 'starting'
      const credentials: Static<typeof Ready>['credentials'] = {}
      for (const id of tokens.ids()) {
        const s = tokens.status(id)
        credentials[id] = {
          state: s.state,
          expires_at: isoOrNull(s.expiresAt),
          last_error: lastErrorBody(s.credential.type, s.lastError),
          secret: s.secret,
          clock_offset_ms: fastify.upstreamClocks.offset(id) ?? null,
        }
      }
      reply.header('cache-control', 'no-store')
      reply.code(status === 'ready' ? 200 : 503)
      return { status, store: fastify.store.status(), credentials }
    },
  )

  fastify.get(
    '/metrics',
    {
      schema: {
        operationId: 'metrics',
        tags: ['operations'],
        summary: 'Prometheus metrics',
        description:
          'Prometheus text exposition format. It includes `token_broker_mints_total{credential,outcome}`, ' +
          'the `token_broker_upstream_request_duration_seconds` histogram, ' +
          '`token_broker_token_remaining_seconds{credential}`, `token_broker_credential_failing{credential}`, ' +
          '`token_broker_credential_secret_index{credential}`, ' +
          '`token_broker_store_up{kind}`, `token_broker_ready` and the default Node.js process metrics.',
        security: NO_KEY,
        response: { 200: MetricsResponse, ...errors(403, 500) },
      },
    },
    async (_request, reply) => {
      const { registry } = fastify.metrics
      reply.header('content-type', registry.contentType)
      return registry.metrics()
    },
  )
}

export default healthRoutes
