// Without OTEL_EXPORTER_OTLP_ENDPOINT no tracing code is loaded: the real process runs with module
// hooks that record every module it loads (fixtures/record-loads.mjs), serves a token, and stops.
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import type { Simulator } from '../../src/simulator/server.js'
import { freePort, ROOT, startNode, TSX, waitForStatus } from '../../tools/process.js'
import { baseEnv, brokerDocument, startSimulator, writeConfig } from '../helpers/broker.js'
import { startOtlpReceiver } from '../helpers/otlp-receiver.js'
import { ALL } from '../http/support.js'

const RECORD_LOADS = fileURLToPath(new URL('./fixtures/record-loads.mjs', import.meta.url))

let sim: Simulator
let config: { path: string; cleanup: () => Promise<void> }
beforeAll(async () => {
  sim = await startSimulator()
  config = await writeConfig(brokerDocument(sim.url))
})
afterAll(async () => {
  await config?.cleanup()
  await sim?.close()
})

/** Runs the broker, gets a token, stops it; returns the URLs of the modules it loaded. */
async function modulesLoaded(extraEnv: Record<string, string>): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'token-broker-loads-'))
  onTestFinished(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'loaded.txt')
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const server = startNode(
    'broker',
    ['--import', TSX, '--import', RECORD_LOADS, join(ROOT, 'src', 'server.ts')],
    {
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        ...baseEnv(config.path),
        PORT: String(port),
        LOG_LEVEL: 'info',
        LOADED_MODULES_FILE: file,
        ...extraEnv,
      },
    },
  )
  onTestFinished(async () => {
    await server.stop(1000)
  })
  await waitForStatus(`${base}/readyz`, { child: server, timeoutMs: 20_000 })
  const res = await fetch(`${base}/v1/tokens/adobe-ims`, { headers: ALL })
  expect(res.status).toBe(200)
  await res.arrayBuffer()
  const exit = await server.stop(5000)
  expect(exit.code, server.output()).toBe(0)
  return (await readFile(file, 'utf8')).split('\n').filter(Boolean)
}

const tracingCode = (urls: string[]) =>
  urls.filter((u) => u.includes('@opentelemetry') || /\/src\/(tracing\/|plugins\/request-spans)/.test(u))

describe('tracing is loaded lazily', () => {
  it('without OTEL_EXPORTER_OTLP_ENDPOINT, no OpenTelemetry module and no tracing adapter is loaded', async () => {
    const loaded = await modulesLoaded({})
    // The recorder works: the broker's own modules are in the list.
    expect(loaded.some((u) => u.endsWith('/src/plugins/tracing.ts'))).toBe(true)
    expect(loaded.some((u) => u.includes('/node_modules/fastify/'))).toBe(true)
    expect(tracingCode(loaded)).toEqual([])
  })

  it('with it, the SDK and the adapter are loaded', async () => {
    const receiver = await startOtlpReceiver()
    onTestFinished(() => receiver.close())
    const loaded = await modulesLoaded({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url })
    expect(loaded.some((u) => u.includes('/node_modules/@opentelemetry/sdk-trace-base/'))).toBe(true)
    expect(loaded.some((u) => u.endsWith('/src/tracing/otel.ts'))).toBe(true)
    // SIGTERM flushed the spans: the warm-up mints reached the collector.
    expect(receiver.spans.filter((s) => s.name === 'token_broker.mint')).toHaveLength(2)
  })
})
