import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Span, Tracer } from '../core/tracer.js'
import { clientOf, credentialOf } from '../http/answers.js'

/**
 * A span per /v1/* request, from onRequest (before the address and key checks, so refusals are
 * traced too) to onResponse. Its outcome is the answer's error code, or OK. Loaded only when
 * tracing is on (plugins/tracing.ts).
 */
export function traceRequests(fastify: FastifyInstance, tracer: Tracer): void {
  const spans = new WeakMap<FastifyRequest, Span>()
  const outcomes = new WeakMap<FastifyRequest, string>()

  fastify.addHook('onRequest', (request, _reply, done) => {
    if (request.url.startsWith('/v1/')) {
      const route = request.routeOptions.url ?? 'unrouted'
      spans.set(
        request,
        tracer.startSpan(`${request.method} ${route}`, {
          'http.request.method': request.method,
          'http.route': route,
        }),
      )
    }
    done()
  })
  // Error answers carry their code in the body (the one error shape): read it back from there.
  fastify.addHook('onSend', (request, reply, payload, done) => {
    if (reply.statusCode >= 400 && typeof payload === 'string' && spans.has(request)) {
      try {
        const code = (JSON.parse(payload) as { code?: unknown }).code
        if (typeof code === 'string') outcomes.set(request, code)
      } catch {
        // Not the error shape: the status code says enough.
      }
    }
    done(null, payload)
  })
  const finish = (request: FastifyRequest, statusCode: number, fallback: string) => {
    const span = spans.get(request)
    if (!span) return
    spans.delete(request)
    span.setAttributes({
      'http.response.status_code': statusCode,
      'token_broker.client': clientOf(request),
      'token_broker.credential': credentialOf(request),
      'token_broker.outcome': outcomes.get(request) ?? fallback,
    })
    span.end()
  }
  fastify.addHook('onResponse', (request, reply, done) => {
    finish(request, reply.statusCode, reply.statusCode < 400 ? 'OK' : String(reply.statusCode))
    done()
  })
  fastify.addHook('onRequestAbort', (request, done) => {
    finish(request, 499, 'aborted')
    done()
  })
}
