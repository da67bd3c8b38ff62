import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { noopTracer, type Tracer } from '../core/tracer.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Spans for mints, upstream requests and /v1/* requests; a no-op unless tracing is on. */
    tracer: Tracer
  }
}

/** How long closing waits for the last spans to be sent (an unreachable collector must not hold it). */
const FLUSH_MS = 1_000

/**
 * Tracing, only with OTEL_EXPORTER_OTLP_ENDPOINT: then, and only then, the OpenTelemetry SDK and
 * the request hooks are loaded (dynamic imports), so without it no tracing code runs or loads.
 */
async function tracingPlugin(fastify: FastifyInstance) {
  const endpoint = fastify.config.OTEL_EXPORTER_OTLP_ENDPOINT
  if (endpoint === undefined) {
    fastify.decorate('tracer', noopTracer)
    return
  }
  const [{ startOtel }, { traceRequests }] = await Promise.all([
    import('../tracing/otel.js'),
    import('./request-spans.js'),
  ])
  const otel = startOtel({ endpoint })
  fastify.decorate('tracer', otel.tracer)
  traceRequests(fastify, otel.tracer)
  fastify.addHook('onClose', async () => {
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, FLUSH_MS)
    })
    await Promise.race([otel.shutdown().catch(() => {}), late])
    clearTimeout(timer)
  })
  // The host only: a URL may carry credentials.
  fastify.log.info({ collector: new URL(endpoint).host }, 'tracing: exporting spans over OTLP')
}

export default fp(tracingPlugin, { name: 'tracing', dependencies: ['broker-config'] })
