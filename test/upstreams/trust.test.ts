import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import type { Simulator } from '../../src/simulator/server.js'
import { freePort, waitForStatus } from '../../tools/process.js'
import { baseEnv, brokerDocument, buildBroker, SECRETS, startSimulator } from '../helpers/broker.js'
import { type CertDir, certDir, type TestCa } from '../helpers/certs.js'
import { startServer } from '../helpers/server-process.js'

/** An upstream whose certificate comes from a private CA: refused unless that CA is trusted. */
let certs: CertDir
let ca: TestCa
let sim: Simulator

beforeAll(async () => {
  certs = await certDir()
  ca = await certs.ca('private-ca')
  sim = await startSimulator({ tls: await ca.issue('private-upstream') })
})
afterAll(async () => {
  await sim?.close()
  await certs?.remove()
})

describe('upstream TLS trust', () => {
  it('refuses an upstream certificate from an unknown CA, and says so in last_error', async () => {
    const app = await buildBroker({ simUrl: sim.url })
    onTestFinished(() => app.close())
    const before = sim.issued()
    const ready = (await app.inject({ url: '/readyz' })).json()
    const lastError = ready.credentials['adobe-ims'].last_error
    expect(ready.credentials['adobe-ims'].state).not.toBe('ok')
    expect(lastError.code).toBe('UPSTREAM_UNAVAILABLE')
    expect(lastError.message).toMatch(
      new RegExp(`certificate of ${new URL(sim.url).host} not trusted \\([A-Z_]+\\)`),
    )
    // No token was issued over the refused connection.
    expect(sim.issued()).toBe(before)
  })

  it('trusts that CA in a process started with NODE_EXTRA_CA_CERTS', async () => {
    const configPath = join(certs.dir, 'broker.config.json')
    await writeFile(configPath, JSON.stringify(brokerDocument(sim.url)))
    const port = await freePort()
    const child = startServer({
      ...baseEnv(configPath),
      PORT: String(port),
      LOG_LEVEL: 'info',
      NODE_EXTRA_CA_CERTS: ca.certFile,
    })
    onTestFinished(() => child.stop().then(() => undefined))
    const base = `http://127.0.0.1:${port}`
    await waitForStatus(`${base}/readyz`, { child, timeoutMs: 20_000 })
    const ready = (await (await fetch(`${base}/readyz`)).json()) as {
      credentials: Record<string, { state: string; last_error: unknown }>
    }
    expect(ready.credentials['adobe-ims']).toMatchObject({ state: 'ok', last_error: null })
    const res = await fetch(`${base}/v1/tokens/adobe-ims`, {
      headers: { authorization: `Bearer ${SECRETS.keyAll}` },
    })
    expect(res.status).toBe(200)
    expect(child.output()).not.toMatch(/CANARY/)
  })
})
