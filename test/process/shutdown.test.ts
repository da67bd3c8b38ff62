import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { Simulator } from '../../src/simulator/server.js'
import { type Child, freePort, waitForStatus } from '../../tools/process.js'
import {
  auth,
  baseEnv,
  brokerDocument,
  IMS_CLIENT_ID,
  SECRETS,
  startSimulator,
  writeConfig,
} from '../helpers/broker.js'
import { startServer } from '../helpers/server-process.js'

/** The documented bound (docs/operations.md): the process is gone within 10 s of the signal. */
const EXIT_WITHIN_MS = 10_000

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

let server: Child | undefined
let base = ''
beforeEach(async () => {
  sim.reset()
  const port = await freePort()
  base = `http://127.0.0.1:${port}`
  server = startServer({ ...baseEnv(config.path), PORT: String(port), LOG_LEVEL: 'info' })
  await waitForStatus(`${base}/readyz`, { child: server, timeoutMs: 15_000 })
})
afterEach(async () => {
  await server?.stop(1000)
  server = undefined
})

describe('the real process', () => {
  it('SIGTERM with a request in flight: the request is answered, then the process exits 0', async () => {
    const s = server!
    const current = (
      (await (await fetch(`${base}/v1/tokens/adobe-ims`, { headers: auth(SECRETS.keyAll) })).json()) as {
        access_token: string
      }
    ).access_token
    // The next mint takes 1.5 s upstream.
    sim.behave(IMS_CLIENT_ID, { latencyMs: 1500 })
    const before = sim.mints(IMS_CLIENT_ID)
    const inflight = fetch(`${base}/v1/tokens/adobe-ims/refresh`, {
      method: 'POST',
      headers: { ...auth(SECRETS.keyAll), 'content-type': 'application/json' },
      body: JSON.stringify({ rejected_token: current }),
    })
    // In flight for real: the broker's mint has reached upstream.
    while (sim.mints(IMS_CLIENT_ID) === before) await new Promise((r) => setTimeout(r, 10))

    const signalledAt = Date.now()
    s.signal('SIGTERM')

    const res = await inflight
    expect(res.status).toBe(200)
    const body = (await res.json()) as { access_token: string }
    expect(body.access_token).not.toBe(current)
    // It waited for the mint rather than cutting it short.
    expect(Date.now() - signalledAt).toBeGreaterThan(1000)

    const { code, signal, at } = await s.exited
    expect({ code, signal }).toEqual({ code: 0, signal: null })
    expect(at - signalledAt).toBeLessThan(EXIT_WITHIN_MS)
    expect(s.stdout()).toMatch(/shutting down/)
    // A clean exit: nothing written to stderr.
    expect(s.stderr()).toBe('')
  }, 30_000)

  it('SIGINT exits 0 promptly', async () => {
    const s = server!
    const signalledAt = Date.now()
    s.signal('SIGINT')
    const { code, signal, at } = await s.exited
    expect({ code, signal }).toEqual({ code: 0, signal: null })
    expect(at - signalledAt).toBeLessThan(EXIT_WITHIN_MS)
  }, 30_000)

  it('SIGTERM while idle exits 0 promptly, with keep-alive clients connected', async () => {
    const s = server!
    // A keep-alive connection left open by a client must not hold the process.
    const res = await fetch(`${base}/healthz`)
    expect(res.status).toBe(200)
    await res.text()
    const signalledAt = Date.now()
    s.signal('SIGTERM')
    const { code, at } = await s.exited
    expect(code).toBe(0)
    expect(at - signalledAt).toBeLessThan(EXIT_WITHIN_MS)
    // After the signal nobody is accepted any more.
    await expect(fetch(`${base}/healthz`)).rejects.toThrow()
  }, 30_000)
})
