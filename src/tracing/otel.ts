import { type Span as OtelSpan, ROOT_CONTEXT, SpanStatusCode, trace } from '@opentelemetry/api'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http'
import {
  defaultResource,
  detectResources,
  envDetector,
  resourceFromAttributes,
} from '@opentelemetry/resources'
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions'
import type { Span, SpanAttributes, Tracer } from '../core/tracer.js'

export interface OtelOptions {
  /** OTEL_EXPORTER_OTLP_ENDPOINT: the collector's base URL; spans go to `<endpoint>/v1/traces`. */
  endpoint: string
}

export interface OtelTracing {
  tracer: Tracer
  /** Sends what is buffered and stops; bounded by the caller. */
  shutdown(): Promise<void>
}

/** The core's span, carrying the OpenTelemetry span so a child can name it as its parent. */
class Adapted implements Span {
  constructor(readonly inner: OtelSpan) {}
  setAttributes(attributes: SpanAttributes): void {
    this.inner.setAttributes(attributes)
  }
  end(error?: unknown): void {
    if (error !== undefined) {
      // The error's name and message (upstream's reason, as /readyz shows it), never its details.
      const message = error instanceof Error ? `${error.name}: ${error.message}`.slice(0, 200) : 'failed'
      this.inner.setStatus({ code: SpanStatusCode.ERROR, message })
    }
    this.inner.end()
  }
}

/**
 * The core's tracer on the OpenTelemetry SDK, exporting OTLP over HTTP (JSON). The SDK's own
 * variables apply (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_HEADERS,
 * OTEL_TRACES_SAMPLER, OTEL_BSP_*). The provider is not registered globally: the broker's spans
 * are the only ones, and parents are passed explicitly rather than through a context manager.
 */
export function startOtel(opts: OtelOptions): OtelTracing {
  const resource = defaultResource()
    .merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: 'token-broker' }))
    .merge(detectResources({ detectors: [envDetector] }))
  const exporter = new OTLPTraceExporter({ url: `${opts.endpoint.replace(/\/+$/, '')}/v1/traces` })
  const provider = new BasicTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(exporter)] })
  const otel = provider.getTracer('token-broker')
  return {
    tracer: {
      startSpan(name, attributes, parent) {
        const context = parent instanceof Adapted ? trace.setSpan(ROOT_CONTEXT, parent.inner) : ROOT_CONTEXT
        return new Adapted(otel.startSpan(name, { attributes }, context))
      },
    },
    shutdown: () => provider.shutdown(),
  }
}
