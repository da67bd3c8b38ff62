import type { AddressInfo } from 'node:net'
import { createServer, type Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import type { Simulator } from '../../src/simulator/server.js'
import { buildBroker, startSimulator } from '../helpers/broker.js'
import { type CertDir, certDir, type TestCa } from '../helpers/certs.js'
import { type ConnectProxy, startConnectProxy } from '../helpers/connect-proxy.js'
import { getToken, noJitter, refresh } from '../http/support.js'

/** Egress proxy: the simulator served over HTTPS (a CA made for the test) behind a real CONNECT proxy. */
let certs: CertDir
let ca: TestCa
let sim: Simulator
let simHost: string

beforeAll(async () => {
  certs = await certDir()
  ca = await certs.ca('upstream-ca')
  const leaf = await ca.issue('upstream')
  sim = await startSimulator({ tls: leaf })
  simHost = new URL(sim.url).host
})
afterAll(async () => {
  await sim?.close()
  await certs?.remove()
})

async function proxy(opts: Parameters<typeof startConnectProxy>[0] = {}): Promise<ConnectProxy> {
  const p = await startConnectProxy(opts)
  onTestFinished(() => p.close())
  return p
}

async function broker(env: Record<string, string>, logLines?: string[]): Promise<FastifyInstance> {
  const app = await buildBroker({
    simUrl: sim.url,
    env: { ...env, ...(logLines ? { LOG_LEVEL: 'debug' } : {}) },
    upstreamCa: ca.cert,
    random: noJitter,
    ...(logLines ? { logLines } : {}),
  })
  onTestFinished(() => app.close())
  return app
}

const readiness = async (app: FastifyInstance) => (await app.inject({ url: '/readyz' })).json()

describe('HTTPS_PROXY', () => {
  it('sends token requests through the proxy (CONNECT to the upstream)', async () => {
    const p = await proxy()
    const before = sim.mints()
    const app = await broker({ HTTPS_PROXY: p.url })
    const { res, body } = await getToken(app, 'adobe-ims')
    expect(res.statusCode).toBe(200)
    expect(body.access_token.length).toBeGreaterThan(0)
    expect(p.connects).toContain(simHost)
    expect(sim.mints()).toBeGreaterThan(before)
  })

  it('reads the lower-case form too, and NO_PROXY bypasses the proxy', async () => {
    const p = await proxy()
    const app = await broker({ https_proxy: p.url, NO_PROXY: 'example.org,127.0.0.1' })
    expect((await getToken(app, 'marketplace')).res.statusCode).toBe(200)
    expect(p.connects).toEqual([])
  })

  it('gives a proxy that demands credentials the ones in its URL, and never logs the password', async () => {
    const password = 'proxy-pass-CANARY-4e1b'
    const p = await proxy({ auth: { user: 'broker', password } })
    const lines: string[] = []
    const app = await broker({ HTTPS_PROXY: p.urlWith('broker', password) }, lines)
    expect((await getToken(app, 'adobe-ims')).res.statusCode).toBe(200)
    expect(p.connects).toContain(simHost)
    expect(p.refused).toBe(0)
    expect(lines.join('')).toContain('egress proxy')
    expect(lines.join('')).not.toContain(password)
    expect(JSON.stringify(await readiness(app))).not.toContain(password)
  })

  it('a proxy that refuses the tunnel (407: no or wrong credentials) is named in last_error', async () => {
    const password = 'wrong-pass-CANARY-9a7c'
    const p = await proxy({ auth: { user: 'broker', password: 'right' } })
    const lines: string[] = []
    const app = await broker({ HTTPS_PROXY: p.urlWith('broker', password) }, lines)
    expect(p.refused).toBeGreaterThan(0)
    const ready = await readiness(app)
    const message = ready.credentials['adobe-ims'].last_error.message as string
    expect(message).toContain(`egress proxy ${new URL(p.url).host} refused the tunnel (HTTP 407)`)
    expect(lines.join('') + JSON.stringify(ready)).not.toContain(password)
  })

  it('proxy down: a transient failure, the held token is served, last_error says the proxy is unreachable', async () => {
    const p = await proxy()
    const password = 'down-pass-CANARY-20c3'
    const lines: string[] = []
    // The test proxy takes any credentials; they only must not leak.
    const app = await broker({ HTTPS_PROXY: p.urlWith('u', password) }, lines)
    const held = (await getToken(app, 'adobe-ims')).body.access_token
    await p.close()

    const forced = await refresh(app, 'adobe-ims', { rejected_token: held })
    expect(forced.res.statusCode).toBe(503)
    expect(forced.res.json().code).toBe('UPSTREAM_UNAVAILABLE')
    const { res, body } = await getToken(app, 'adobe-ims')
    expect(res.statusCode).toBe(200)
    expect(body.access_token).toBe(held)

    const ready = await readiness(app)
    const lastError = ready.credentials['adobe-ims'].last_error
    expect(lastError.code).toBe('UPSTREAM_UNAVAILABLE')
    expect(lastError.message).toContain(
      `egress proxy ${new URL(p.url).host} refused the connection (ECONNREFUSED)`,
    )
    expect(lines.join('') + JSON.stringify(ready) + forced.res.body).not.toContain(password)
  })

  it('UPSTREAM_TIMEOUT_MS bounds a request whose proxy never answers CONNECT', async () => {
    const held = new Set<Socket>()
    const silent = createServer((socket) => held.add(socket.on('error', () => {})))
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    onTestFinished(
      () =>
        new Promise<void>((resolve) => {
          for (const socket of held) socket.destroy()
          silent.close(() => resolve())
        }),
    )
    const { port } = silent.address() as AddressInfo
    const started = Date.now()
    const app = await broker({ HTTPS_PROXY: `http://127.0.0.1:${port}`, UPSTREAM_TIMEOUT_MS: '300' })
    // Warm-up's attempts each gave up at 300 ms, not at the 10 s connect bound or undici's defaults.
    expect(Date.now() - started).toBeLessThan(8_000)
    const ready = await readiness(app)
    expect(held.size).toBeGreaterThan(0)
    expect(ready.credentials['adobe-ims'].last_error.message).toContain('token request timed out')
  })
})
