/**
 * The tracing the domain code does, without a tracing library: spans with flat attributes and an
 * explicit parent. An adapter (src/tracing/) maps it onto OpenTelemetry; by default nothing is done.
 * Attributes name credentials, reasons and outcomes: never a secret, a key or a token.
 */
export type SpanAttributes = Record<string, string | number | boolean>

export interface Span {
  setAttributes(attributes: SpanAttributes): void
  /** Ends the span; with `error`, marks it failed (the error's name and message, nothing else). */
  end(error?: unknown): void
}

export interface Tracer {
  startSpan(name: string, attributes?: SpanAttributes, parent?: Span): Span
}

const noopSpan: Span = { setAttributes() {}, end() {} }

export const noopTracer: Tracer = { startSpan: () => noopSpan }
