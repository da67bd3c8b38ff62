import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Client } from '../config/types.js'
import { authenticate } from './auth.js'
import { errorHandler, notFoundHandler } from './error-handler.js'
import { BadRequest, Forbidden, Unauthenticated } from './errors.js'
import credentialRoutes from './routes/credentials.js'
import healthRoutes from './routes/health.js'
import tokenRoutes from './routes/tokens.js'
import { ErrorBody } from './schemas.js'

declare module 'fastify' {
  interface FastifyRequest {
    client: Client
  }
}

async function http(fastify: FastifyInstance) {
  fastify.addSchema(ErrorBody)
  fastify.setErrorHandler(errorHandler)
  fastify.setNotFoundHandler(notFoundHandler)

  // An empty JSON body is a valid "no options" refresh; anything else must parse.
  // JSON only: any other body type is refused as such (400) rather than half-validated.
  fastify.removeAllContentTypeParsers()
  fastify.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = (body as string).trim()
    if (text === '') return done(null, undefined)
    try {
      done(null, JSON.parse(text))
    } catch {
      done(new BadRequest('the body is not valid JSON'), undefined)
    }
  })

  // Every route, health and metrics included, is for allowed source addresses only.
  fastify.addHook('onRequest', (request, _reply, done) => {
    if (fastify.broker.allowed(request.ip)) return done()
    done(new Forbidden('the source address is not allowed to call the broker'))
  })

  // While draining, keep-alive connections are closed as soon as they go idle: a client whose
  // request was in flight at SIGTERM would otherwise hold the closed listener open until the grace
  // period kills us (exit 1). Fastify itself answers requests arriving after close with
  // "Connection: close". A timer while draining, not a hook on every response.
  let reaper: NodeJS.Timeout | undefined
  fastify.addHook('preClose', async () => {
    reaper = setInterval(() => fastify.server.closeIdleConnections?.(), 100)
    reaper.unref()
  })
  fastify.addHook('onClose', async () => clearInterval(reaper))

  await fastify.register(healthRoutes)
  await fastify.register(async function v1(scope) {
    scope.decorateRequest('client', null as unknown as Client)
    scope.addHook('onRequest', (request, _reply, done) => {
      const client = authenticate(fastify.broker.config.clients, request.headers.authorization)
      if (!client) return done(new Unauthenticated())
      request.client = client
      done()
    })
    await scope.register(tokenRoutes)
    await scope.register(credentialRoutes)
  })
}

export default fp(http, { name: 'http', dependencies: ['tokens', 'metrics', 'broker-config'] })
