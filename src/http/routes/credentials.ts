import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { countAnswer } from '../answers.js'
import { mayUse } from '../auth.js'
import { lastErrorBody } from '../failure.js'
import { isoOrNull } from '../present.js'
import { CLIENT_KEY, CredentialsResponse, errors } from '../schemas.js'

/** What a client may use and how each credential is doing; never a token or a secret. */
const credentialRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get(
    '/v1/credentials',
    {
      schema: {
        operationId: 'listCredentials',
        tags: ['credentials'],
        summary: 'The credentials this client may use, with their state',
        description:
          'Lists only the credentials that the calling client is allowed to use. Each entry has the ' +
          "credential's current expiry, refresh times and last error. The list never contains a token or a secret.",
        security: CLIENT_KEY,
        response: { 200: CredentialsResponse, ...errors(401, 403, 500) },
      },
    },
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
          last_error: lastErrorBody(s.credential.type, s.lastError),
        })
      }
      countAnswer(request, 'OK')
      return { credentials }
    },
  )
}

export default credentialRoutes
