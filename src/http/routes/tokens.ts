import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Credential } from '../../core/credential.js'
import { FORCED_MINTS_PER_WINDOW, FORCED_WINDOW_MS } from '../../core/failure.js'
import type { Token } from '../../core/token.js'
import { logDenied } from '../audit.js'
import { mayUse } from '../auth.js'
import { BadRequest, BODY_LIMIT, CredentialNotFound, Forbidden } from '../errors.js'
import { tokenBody } from '../present.js'
import { CLIENT_KEY, CredentialParams, errors, RefreshBody, TokenQuery, TokenResponse } from '../schemas.js'

const GET_TOKEN = `Returns the held token when it has at least \`min_ttl\` seconds left. No upstream call is made
in that case.

If the held token has less time left, the broker mints a new one first. It does not do this when the
held token was minted less than 10 s ago. A token that new is as long-lived as Adobe grants, so no mint
could meet \`min_ttl\`, and the answer is 400.

What happens when that mint fails depends on \`min_ttl\`:
- With an explicit \`min_ttl\`, the answer is 502 (Adobe refused the secret) or 503 (Adobe is unavailable).
- Without \`min_ttl\`, the held token is still served while it meets the default.
`

const REFRESH = `Use this after Adobe answered 401 to a token from this broker.

Send that token as \`rejected_token\`. The broker compares it with the token it currently holds:
- If they differ, the token was already replaced, so the current one is returned and nothing is minted.
- If they match, a new token is minted.

With no \`rejected_token\`, the broker mints a new token, unless the last mint was less than 10 s ago.
In that case it returns that token.

Concurrent refreshes of one credential share one upstream call. If the mint fails, the answer is 502
or 503. The answer is never the rejected token, nor a token older than the one the broker holds.

A refresh naming the current token mints (a forced refresh). At most ${FORCED_MINTS_PER_WINDOW} forced mints of one
credential happen per ${FORCED_WINDOW_MS / 1000} s across the whole fleet; beyond that the answer is 429 with \`Retry-After\`. The body is optional: no body, an empty body, \`{}\` and \`null\` all mean "no options".
`

const tokenRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { tokens } = fastify

  /** Sends the token, serialised through the route's 200 schema once per token (see tokenBody). */
  function sendToken(reply: FastifyReply, credential: Credential, token: Token): void {
    fastify.metrics.requests.count(reply.request.client.id, credential.id, 'OK')
    const body = tokenBody(
      credential,
      token,
      fastify.clock.now(),
      (view) => reply.serializeInput(view, '200') as string,
    )
    reply.header('cache-control', 'no-store').type('application/json; charset=utf-8').send(body)
  }

  /** 404 before 403: an unknown credential is reported as such to any authenticated client. */
  function credentialFor(id: string, request: FastifyRequest) {
    // The unit's own settings, as /v1/credentials and /readyz report them: the file a reload read
    // may already name others while the reload is still applying them.
    const credential = tokens.credential(id)
    if (!credential) throw new CredentialNotFound(id)
    if (!mayUse(request.client, id)) {
      logDenied(request, 'credential_not_allowed')
      throw new Forbidden(`client "${request.client.id}" may not use credential "${id}"`)
    }
    return credential
  }

  fastify.get(
    '/v1/tokens/:credential',
    {
      // Ajv's coercion would read "1e3", "0x10" or " 5" as integers: min_ttl is decimal digits only.
      preValidation: (request, _reply, done) => {
        const raw = (request.query as Record<string, unknown>).min_ttl
        if (raw !== undefined && (typeof raw !== 'string' || !/^\d{1,6}$/.test(raw))) {
          return done(new BadRequest('query min_ttl must be a whole number of seconds from 0 to 86400'))
        }
        done()
      },
      schema: {
        operationId: 'getToken',
        tags: ['tokens'],
        summary: 'A token that stays valid for at least `min_ttl` seconds',
        description: GET_TOKEN,
        security: CLIENT_KEY,
        params: CredentialParams,
        querystring: TokenQuery,
        response: { 200: TokenResponse, ...errors(400, 401, 403, 404, 500, 502, 503) },
      },
    },
    (request, reply) => {
      const id = request.params.credential
      const credential = credentialFor(id, request)
      const minTtl = request.query.min_ttl
      // The hot path: a token from memory, synchronously: no promise, no I/O.
      const held = tokens.peek(id, minTtl)
      if (held) return sendToken(reply, credential, held)
      return tokens.get(id, minTtl).then((token) => sendToken(reply, credential, token))
    },
  )

  fastify.post(
    '/v1/tokens/:credential/refresh',
    {
      bodyLimit: BODY_LIMIT,
      // The shared Ajv coerces types (min_ttl needs it), which would turn `{"rejected_token": 5}`
      // into "5" and `false` into null: refuse what is not JSON of the right type before that.
      preValidation: (request, _reply, done) => {
        const body: unknown = request.body
        if (body === undefined || body === null) return done()
        if (typeof body !== 'object') return done(new BadRequest('body must be object'))
        const rejected = (body as { rejected_token?: unknown }).rejected_token
        if (rejected !== undefined && typeof rejected !== 'string') {
          return done(new BadRequest('body rejected_token must be string'))
        }
        done()
      },
      schema: {
        operationId: 'refreshToken',
        tags: ['tokens'],
        summary: 'A new token, usually after Adobe refused the one the caller has',
        description: REFRESH,
        security: CLIENT_KEY,
        params: CredentialParams,
        body: RefreshBody,
        response: { 200: TokenResponse, ...errors(400, 401, 403, 404, 413, 429, 500, 502, 503) },
      },
    },
    async (request, reply) => {
      const id = request.params.credential
      const credential = credentialFor(id, request)
      sendToken(reply, credential, await tokens.refresh(id, request.body?.rejected_token, request.client.id))
    },
  )
}

export default tokenRoutes
