import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { mayUse } from '../auth.js'
import { isoOrNull, lastErrorBody } from '../present.js'
import { CredentialsResponse, errors } from '../schemas.js'

/** What a client may use and how each credential is doing; never a token or a secret. */
const credentialRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get(
    '/v1/credentials',
    { schema: { response: { 200: CredentialsResponse, ...errors(401, 403, 500) } } },
    async (request) => {
      const credentials = []
      for (const id of fastify.tokens.ids()) {
        if (!mayUse(request.client, id)) continue
        const s = fastify.tokens.status(id)
        credentials.push({
          id,
          type: s.credential.type,
          environment: s.credential.environment,
          state: s.state,
          expires_at: isoOrNull(s.expiresAt),
          refreshed_at: isoOrNull(s.refreshedAt),
          next_refresh_at: isoOrNull(s.nextRefreshAt),
          last_error: lastErrorBody(s.lastError),
        })
      }
      return { credentials }
    },
  )
}

export default credentialRoutes
