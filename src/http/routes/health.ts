import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Static } from '@sinclair/typebox'
import { isoOrNull, lastErrorBody } from '../present.js'
import { errors, HealthResponse, ReadyResponse } from '../schemas.js'

const healthRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get(
    '/healthz',
    { schema: { response: { 200: HealthResponse, ...errors(403, 500) } } },
    async () => ({
      status: 'ok' as const,
    }),
  )

  /** 503 until warm-up has tried every credential and while draining; 200 even if some credentials fail. */
  fastify.get(
    '/readyz',
    { schema: { response: { 200: ReadyResponse, 503: ReadyResponse, ...errors(403, 500) } } },
    async (_request, reply) => {
      const { tokens } = fastify
      const status: Static<typeof ReadyResponse>['status'] = fastify.draining
        ? 'draining'
        : tokens.started
          ? 'ready'
          : 'starting'
      const credentials: Static<typeof ReadyResponse>['credentials'] = {}
      for (const id of tokens.ids()) {
        const s = tokens.status(id)
        credentials[id] = {
          state: s.state,
          expires_at: isoOrNull(s.expiresAt),
          last_error: lastErrorBody(s.lastError),
        }
      }
      reply.header('cache-control', 'no-store')
      reply.code(status === 'ready' ? 200 : 503)
      return { status, store: fastify.store.status(), credentials }
    },
  )

  fastify.get('/metrics', { schema: { response: { ...errors(403, 500) } } }, async (_request, reply) => {
    const { registry } = fastify.metrics
    reply.header('content-type', registry.contentType)
    return registry.metrics()
  })
}

export default healthRoutes
