import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply } from 'fastify'
import type { Credential } from '../../config/types.js'
import type { Token } from '../../tokens/token.js'
import { mayUse } from '../auth.js'
import { BadRequest, BODY_LIMIT, CredentialNotFound, Forbidden } from '../errors.js'
import { tokenBody } from '../present.js'
import { CredentialParams, errors, RefreshBody, TokenQuery, TokenResponse } from '../schemas.js'

const tokenRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { tokens } = fastify

  /** Sends the token, serialised through the route's 200 schema once per token (see tokenBody). */
  function sendToken(reply: FastifyReply, credential: Credential, token: Token): void {
    const body = tokenBody(
      credential,
      token,
      fastify.clock.now(),
      (view) => reply.serializeInput(view, '200') as string,
    )
    reply.header('cache-control', 'no-store').type('application/json; charset=utf-8').send(body)
  }

  /** 404 before 403: an unknown credential is reported as such to any authenticated client. */
  function credentialFor(id: string, request: { client: import('../../config/types.js').Client }) {
    const credential = fastify.broker.config.credentials.get(id)
    if (!credential || !tokens.has(id)) throw new CredentialNotFound(id)
    if (!mayUse(request.client, id)) {
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
        params: CredentialParams,
        body: RefreshBody,
        response: { 200: TokenResponse, ...errors(400, 401, 403, 404, 413, 500, 502, 503) },
      },
    },
    async (request, reply) => {
      const id = request.params.credential
      const credential = credentialFor(id, request)
      sendToken(reply, credential, await tokens.refresh(id, request.body?.rejected_token))
    },
  )
}

export default tokenRoutes
