// Without OTEL_EXPORTER_OTLP_ENDPOINT no tracing code is loaded: the real process runs with module
// hooks that record every module it loads (helpers/loaded-modules.ts), serves a token, and stops.
import { describe, expect, it, onTestFinished } from 'vitest'
import { modulesLoaded } from '../helpers/loaded-modules.js'
import { startOtlpReceiver } from '../helpers/otlp-receiver.js'
import { useSimulatorConfig } from '../helpers/simulator-config.js'

const shared = useSimulatorConfig()

/**
 * The OpenTelemetry SDK, exporter and resources, and the broker's tracing adapter. The API package
 * alone (@opentelemetry/api, a no-op until an SDK registers) is left out: prom-client requires it for
 * exemplars whatever tracing says.
 */
const tracingCode = (urls: string[]) =>
  urls.filter(
    (u) =>
      (u.includes('/node_modules/@opentelemetry/') && !u.includes('/node_modules/@opentelemetry/api/')) ||
      /\/src\/(tracing\/|plugins\/request-spans)/.test(u),
  )

describe('tracing is loaded lazily', () => {
  it('without OTEL_EXPORTER_OTLP_ENDPOINT, no OpenTelemetry module and no tracing adapter is loaded', async () => {
    const loaded = await modulesLoaded(shared.configPath)
    // The recorder works: the broker's own modules are in the list.
    expect(loaded.some((u) => u.endsWith('/src/plugins/tracing.ts'))).toBe(true)
    expect(loaded.some((u) => u.includes('/node_modules/fastify/'))).toBe(true)
    expect(tracingCode(loaded)).toEqual([])
  })

  it('with it, the SDK and the adapter are loaded', async () => {
    const receiver = await startOtlpReceiver()
    onTestFinished(() => receiver.close())
    const loaded = await modulesLoaded(shared.configPath, { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url })
    expect(loaded.some((u) => u.includes('/node_modules/@opentelemetry/sdk-trace-base/'))).toBe(true)
    expect(loaded.some((u) => u.endsWith('/src/tracing/otel.ts'))).toBe(true)
    // SIGTERM flushed the spans: the warm-up mints reached the collector.
    expect(receiver.spans.filter((s) => s.name === 'token_broker.mint')).toHaveLength(2)
  })
})
