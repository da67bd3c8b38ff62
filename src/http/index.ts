import type { Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Client } from '../core/credential.js'
import { logDenied } from './audit.js'
import { authenticate } from './auth.js'
import { guardConnections } from './connections.js'
import { errorHandler, notFoundHandler } from './error-handler.js'
import { BadRequest, Forbidden, NoClientCertificate, Unauthenticated } from './errors.js'
import credentialRoutes from './routes/credentials.js'
import healthRoutes from './routes/health.js'
import tokenRoutes from './routes/tokens.js'
import { ErrorBody } from './schemas.js'

declare module 'fastify' {
  interface FastifyRequest {
    client: Client
  }
  interface FastifyInstance {
    /** The open connections to the listener (shutdown closes those without a finished request). */
    connections: ReadonlySet<Socket>
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

  // Every route, health and metrics included, is for allowed source addresses only: judged when a
  // connection opens (connections.ts) and, for callers behind a trusted proxy and for inject(), on
  // each request by the address the request names.
  fastify.decorate(
    'connections',
    guardConnections(fastify.server, {
      allowed: (ip) => fastify.broker.allowed(ip),
      atConnect: !fastify.broker.behindProxy,
      log: fastify.log,
    }),
  )
  fastify.addHook('onRequest', (request, _reply, done) => {
    if (!fastify.broker.allowed(request.ip)) {
      logDenied(request, 'address_not_allowed')
      return done(new Forbidden('the source address is not allowed to call the broker'))
    }
    // Node's own check (requireHostHeader, off in serverOptions) answers a bare 400 with no body.
    if (request.headers.host === undefined && request.raw.httpVersion !== '1.0') {
      return done(new BadRequest('an HTTP/1.1 request must carry a Host header'))
    }
    done()
  })

  await fastify.register(healthRoutes)
  await fastify.register(async function v1(scope) {
    scope.decorateRequest('client', null as unknown as Client)
    // Mutual TLS (TLS_CLIENT_CA_FILE): the TLS layer asked for a certificate and verified any it got;
    // /v1/* requires a verified one. Decided once here, so a plain listener pays nothing per request.
    if (fastify.listenerTls !== undefined && fastify.config.TLS_CLIENT_CA_FILE !== undefined) {
      scope.addHook('onRequest', (request, _reply, done) => {
        if ((request.raw.socket as Partial<TLSSocket>).authorized !== true)
          return done(new NoClientCertificate())
        done()
      })
    }
    scope.addHook('onRequest', (request, _reply, done) => {
      const client = authenticate(fastify.broker.config.clients, request.headers.authorization)
      if (!client) {
        logDenied(request, 'unauthenticated')
        return done(new Unauthenticated())
      }
      request.client = client
      done()
    })
    await scope.register(tokenRoutes)
    await scope.register(credentialRoutes)
  })
}

export default fp(http, {
  name: 'http',
  dependencies: ['tokens', 'metrics', 'broker-config', 'listener-tls'],
})
