import Fastify, { type FastifyInstance } from 'fastify'
import { Client } from 'undici'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import app, { serverOptions } from '../../src/app.js'
import type { Simulator } from '../../src/simulator/server.js'
import {
  baseEnv,
  brokerDocument,
  buildBroker,
  EQP_APP_ID,
  IMS_CLIENT_ID,
  SECRETS,
  startSimulator,
  writeConfig,
} from '../helpers/broker.js'
import { ALL, getToken, JSON_HEADERS } from './support.js'

let sim: Simulator
beforeAll(async () => {
  sim = await startSimulator()
})
afterAll(async () => {
  await sim.close()
})
beforeEach(() => sim.reset())

let broker: FastifyInstance | undefined
afterEach(async () => {
  await broker?.close()
  broker = undefined
})

interface Ready {
  status: string
  store: { kind: string; state: string; encrypted: boolean }
  credentials: Record<
    string,
    {
      state: string
      expires_at: string | null
      last_error: { code: string } | null
      clock_offset_ms: number | null
    }
  >
}

async function readyz(b: FastifyInstance): Promise<{ statusCode: number; body: Ready; text: string }> {
  const res = await b.inject({ url: '/readyz' })
  expect(res.headers['content-type']).toMatch(/^application\/json/)
  return { statusCode: res.statusCode, body: res.json() as Ready, text: res.body }
}

describe('/healthz', () => {
  it('200 {"status":"ok"}, with no key needed', async () => {
    broker = await buildBroker({ simUrl: sim.url })
    const res = await broker.inject({ url: '/healthz' })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toMatch(/^application\/json/)
    expect(res.json()).toEqual({ status: 'ok' })
  })
})

describe('/readyz', () => {
  it('503 "starting" until warm-up has tried every credential, then 200 "ready"', async () => {
    sim.behave('*', { latencyMs: 600 })
    broker = await buildBroker({ simUrl: sim.url, warm: false })
    const starting = await readyz(broker)
    expect(starting.statusCode).toBe(503)
    expect(starting.body.status).toBe('starting')
    expect(starting.body.store).toEqual({ kind: 'memory', state: 'ok', encrypted: false })
    expect(starting.body.credentials['adobe-ims']).toEqual({
      state: 'pending',
      expires_at: null,
      last_error: null,
      secret: 0,
      clock_offset_ms: null,
    })
    expect(starting.body.credentials.marketplace?.state).toBe('pending')
    // Alive meanwhile.
    expect((await broker.inject({ url: '/healthz' })).statusCode).toBe(200)
    // A caller during warm-up waits for the warm-up's mint rather than starting another.
    const token = await getToken(broker, 'adobe-ims')
    expect(token.res.statusCode).toBe(200)

    await broker.tokens.start()
    const ready = await readyz(broker)
    expect(ready.statusCode).toBe(200)
    expect(ready.body.status).toBe('ready')
    expect(ready.body.credentials['adobe-ims']).toMatchObject({ state: 'ok', last_error: null })
    expect(ready.body.credentials.marketplace).toMatchObject({ state: 'ok', last_error: null })
    // The simulator's Date against the system clock: the same clock, so well under the 30 s limit.
    expect(Math.abs(ready.body.credentials['adobe-ims']!.clock_offset_ms!)).toBeLessThan(2_000)
    expect(Date.parse(ready.body.credentials['adobe-ims']!.expires_at!)).toBeGreaterThan(Date.now())
    expect(sim.mints(IMS_CLIENT_ID)).toBe(1)
    expect(sim.mints(EQP_APP_ID)).toBe(1)
  })

  it('200 "ready" with one credential failing, which shows its state and last error', async () => {
    sim.behave(EQP_APP_ID, { mode: 'reject' })
    broker = await buildBroker({ simUrl: sim.url })
    const { statusCode, body, text } = await readyz(broker)
    expect(statusCode).toBe(200)
    expect(body.status).toBe('ready')
    expect(body.credentials['adobe-ims']).toMatchObject({ state: 'ok', last_error: null })
    expect(body.credentials.marketplace).toMatchObject({
      state: 'failing',
      expires_at: null,
      last_error: { code: 'UPSTREAM_REJECTED' },
    })
    for (const secret of Object.values(SECRETS)) expect(text).not.toContain(secret)
    // The other credential is served.
    expect((await getToken(broker, 'adobe-ims')).res.statusCode).toBe(200)
  })

  it('200 "ready" when every credential fails: warm-up has tried them all', async () => {
    sim.behave('*', { mode: 'error5xx' })
    broker = await buildBroker({ simUrl: sim.url, random: () => 0 })
    const { statusCode, body } = await readyz(broker)
    expect(statusCode).toBe(200)
    expect(body.credentials['adobe-ims']).toMatchObject({
      state: 'failing',
      last_error: { code: 'UPSTREAM_UNAVAILABLE' },
    })
  })

  it('503 "draining" once shutdown begins, while an in-flight request is still answered', async () => {
    const { path, cleanup } = await writeConfig(brokerDocument(sim.url))
    const fastify = Fastify({ ...serverOptions(), logger: false })
    fastify.addHook('onClose', cleanup)
    await fastify.register(app, { env: baseEnv(path) })
    let url = ''
    let duringClose: { status: number; body: Ready } | undefined
    // Runs after the broker's own preClose hook (registered first) and before the listener closes.
    // On a connection of its own: closing ends the idle keep-alive ones, so a pooled one may be gone.
    fastify.addHook('preClose', async () => {
      const client = new Client(url)
      try {
        const res = await client.request({ path: '/readyz', method: 'GET' })
        duringClose = { status: res.statusCode, body: (await res.body.json()) as Ready }
      } finally {
        await client.close()
      }
    })
    url = await fastify.listen({ port: 0, host: '127.0.0.1' })
    await fastify.tokens.start()
    expect((await fetch(`${url}/readyz`)).status).toBe(200)

    const current = (await fastify.inject({ url: '/v1/tokens/adobe-ims', headers: ALL })).json().access_token
    sim.behave(IMS_CLIENT_ID, { latencyMs: 800 })
    const before = sim.mints(IMS_CLIENT_ID)
    const inflight = fetch(`${url}/v1/tokens/adobe-ims/refresh`, {
      method: 'POST',
      headers: { ...ALL, ...JSON_HEADERS },
      body: JSON.stringify({ rejected_token: current }),
    })
    // Wait until the mint has reached upstream: the request is truly in flight.
    while (sim.mints(IMS_CLIENT_ID) === before) await new Promise((r) => setTimeout(r, 10))

    const closed = fastify.close()
    const res = await inflight
    expect(res.status).toBe(200)
    const body = (await res.json()) as { access_token: string }
    expect(body.access_token).not.toBe(current)
    // The keep-alive connection of the in-flight request does not hold the close open.
    await closed
    expect(duringClose?.status).toBe(503)
    expect(duringClose?.body.status).toBe('draining')
  })
})

describe('/metrics', () => {
  function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
    for (const line of text.split('\n')) {
      if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue
      if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue
      return Number(line.slice(line.lastIndexOf(' ') + 1))
    }
    return undefined
  }

  it('exposes mints by credential and outcome, upstream latency, token lifetimes and the store', async () => {
    sim.behave(EQP_APP_ID, { mode: 'reject' })
    broker = await buildBroker({ simUrl: sim.url })
    const served = (await getToken(broker, 'adobe-ims')).body.access_token
    const res = await broker.inject({ url: '/metrics' })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toMatch(/^text\/plain/)
    const text = res.body

    expect(text).toContain('# TYPE token_broker_mints_total counter')
    expect(sample(text, 'token_broker_mints_total', { credential: 'adobe-ims', outcome: 'success' })).toBe(1)
    expect(sample(text, 'token_broker_mints_total', { credential: 'marketplace', outcome: 'rejected' })).toBe(
      1,
    )

    expect(text).toMatch(/# TYPE token_broker_upstream_\w+_seconds histogram/)
    expect(text).toMatch(/token_broker_upstream_\w+_seconds_bucket\{[^}]*le="\+Inf"/)
    expect(text).toMatch(/token_broker_upstream_\w+_seconds_count\{[^}]*\} 1/)

    const remaining = sample(text, 'token_broker_token_remaining_seconds', { credential: 'adobe-ims' })
    expect(remaining).toBeGreaterThan(86_000)
    expect(remaining).toBeLessThanOrEqual(86_399)
    expect(sample(text, 'token_broker_token_remaining_seconds', { credential: 'marketplace' })).toBe(0)

    expect(sample(text, 'token_broker_store_up')).toBe(1)
    // Never a token or a secret.
    expect(text).not.toContain(served)
    for (const secret of Object.values(SECRETS)) expect(text).not.toContain(secret)
  })

  it('counts transient outcomes too', async () => {
    sim.behave(IMS_CLIENT_ID, { mode: 'error5xx' })
    broker = await buildBroker({ simUrl: sim.url, random: () => 0 })
    const text = (await broker.inject({ url: '/metrics' })).body
    const failures = sample(text, 'token_broker_mints_total', {
      credential: 'adobe-ims',
      outcome: 'unavailable',
    })
    expect(failures).toBe(sim.mints(IMS_CLIENT_ID))
    expect(
      sample(text, 'token_broker_mints_total', { credential: 'adobe-ims', outcome: 'success' }),
    ).toBeUndefined()
  })
})
