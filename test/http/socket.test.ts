import Fastify, { type FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import broker, { serverOptions } from '../../src/app.js'
import { HEADERS_TIMEOUT_MS, MAX_CONNECTIONS, REQUEST_TIMEOUT_MS } from '../../src/http/connections.js'
import { ERROR_CODES, STATUS_TEXT } from '../../src/http/errors.js'
import type { Simulator } from '../../src/simulator/server.js'
import {
  baseEnv,
  brokerDocument,
  buildBroker,
  SECRETS,
  startSimulator,
  type TestBrokerOptions,
  writeConfig,
} from '../helpers/broker.js'
import { parseAnswer, rawConnect } from '../helpers/raw-socket.js'

const ERROR_KEYS = ['code', 'error', 'message', 'statusCode']

let sim: Simulator
beforeAll(async () => {
  sim = await startSimulator()
})
afterAll(async () => {
  await sim?.close()
})

/** The real app listening on a real port; closed when the test ends. */
async function listening(opts: Omit<TestBrokerOptions, 'simUrl'> = {}) {
  const app = await buildBroker({ simUrl: sim.url, ...opts })
  onTestFinished(() => app.close())
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, base, port: Number(new URL(base).port) }
}

/** What only a real socket shows: requests Node's HTTP parser refuses before Fastify runs. */
describe('over a real socket', () => {
  let app: FastifyInstance
  let base: string
  let port: number
  beforeAll(async () => {
    app = await buildBroker({ simUrl: sim.url })
    base = await app.listen({ port: 0, host: '127.0.0.1' })
    port = Number(new URL(base).port)
  })
  afterAll(async () => {
    await app?.close()
  })

  it('answers a 20 kB Authorization header with the JSON error shape, and keeps serving', async () => {
    const res = await fetch(`${base}/v1/tokens/adobe-ims`, {
      headers: { authorization: `Bearer ${'k'.repeat(20_000)}` },
    })
    expect(res.status).toBe(400)
    expect(await res.json()).toMatchObject({ statusCode: 400, code: 'BAD_REQUEST', error: 'Bad Request' })

    const ok = await fetch(`${base}/v1/tokens/adobe-ims`, {
      headers: { authorization: `Bearer ${SECRETS.keyAll}` },
    })
    expect(ok.status).toBe(200)
    expect(ok.headers.get('cache-control')).toBe('no-store')
  })

  it('answers an HTTP/1.1 request without Host with 400 BAD_REQUEST in the error shape', async () => {
    for (const path of ['/healthz', '/v1/tokens/adobe-ims']) {
      const { closed } = await rawConnect(
        port,
        `GET ${path} HTTP/1.1\r\nAuthorization: Bearer ${SECRETS.keyAll}\r\nConnection: close\r\n\r\n`,
      )
      const answer = parseAnswer(await closed)
      expect(answer.status, path).toBe(400)
      expect(answer.headers).toContain('content-type: application/json')
      expect(answer.headers).toContain('cache-control: no-store')
      expect(Object.keys(answer.body as object).sort()).toEqual(ERROR_KEYS)
      expect(answer.body).toMatchObject({ statusCode: 400, code: 'BAD_REQUEST', error: 'Bad Request' })
    }
    // HTTP/1.0 has no Host requirement.
    const { closed } = await rawConnect(port, 'GET /healthz HTTP/1.0\r\n\r\n')
    expect(parseAnswer(await closed).status).toBe(200)
  })

  it('bounds how long headers and the whole request may take to arrive, well under a minute', () => {
    expect(HEADERS_TIMEOUT_MS).toBeLessThanOrEqual(10_000)
    expect(app.server.headersTimeout).toBe(HEADERS_TIMEOUT_MS)
    expect(app.server.requestTimeout).toBe(REQUEST_TIMEOUT_MS)
    expect(app.server.maxConnections).toBe(MAX_CONNECTIONS)
  })

  it('answers a caller stuck mid-headers with 408 in the error shape once the bound passes', async () => {
    const { closed } = await rawConnect(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n')
    const answer = parseAnswer(await closed)
    expect(answer.status).toBe(408)
    expect(answer.body).toEqual({
      statusCode: 408,
      code: 'REQUEST_TIMEOUT',
      error: 'Request Timeout',
      message: 'The request took too long to arrive',
    })
    // A code from the one catalogue, with its reason phrase: what the error schema documents.
    const { code, error } = answer.body as { code: string; error: string }
    expect(ERROR_CODES).toContain(code)
    expect(STATUS_TEXT[408]).toBe(error)
  }, 30_000)
})

describe('the source-address allowlist at connect', () => {
  const OUTSIDE_LOOPBACK = { ALLOWED_CIDRS: '10.0.0.0/8' }

  it('answers a disallowed peer 403 in the error shape and closes, before it sends anything', async () => {
    const { port } = await listening({ env: OUTSIDE_LOOPBACK })
    const { closed } = await rawConnect(port)
    const answer = parseAnswer(await closed)
    expect(answer.status).toBe(403)
    expect(Object.keys(answer.body as object).sort()).toEqual(ERROR_KEYS)
    expect(answer.body).toMatchObject({ statusCode: 403, code: 'FORBIDDEN' })
  })

  it('closes a disallowed peer stuck mid-headers at once, not after the headers bound', async () => {
    const { port } = await listening({ env: OUTSIDE_LOOPBACK })
    const { closed } = await rawConnect(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n')
    const started = performance.now()
    expect(parseAnswer(await closed).status).toBe(403)
    expect(performance.now() - started).toBeLessThan(HEADERS_TIMEOUT_MS)
  })

  it('behind a trusted proxy, judges the address each request names instead', async () => {
    // Built as server.ts builds it: TRUST_PROXY reaches Fastify's trustProxy too.
    const { path, cleanup } = await writeConfig(brokerDocument(sim.url))
    const app = Fastify({ ...serverOptions(), logger: false, trustProxy: ['127.0.0.1'] })
    onTestFinished(async () => {
      await app.close()
      await cleanup()
    })
    await app.register(broker, { env: { ...baseEnv(path), ...OUTSIDE_LOOPBACK, TRUST_PROXY: '127.0.0.1' } })
    const base = await app.listen({ port: 0, host: '127.0.0.1' })
    const inside = await fetch(`${base}/healthz`, { headers: { 'x-forwarded-for': '10.1.2.3' } })
    expect(inside.status).toBe(200)
    const outside = await fetch(`${base}/healthz`, { headers: { 'x-forwarded-for': '203.0.113.9' } })
    expect(outside.status).toBe(403)
    expect(await outside.json()).toMatchObject({ code: 'FORBIDDEN' })
  })
})

describe('the open connection limit', () => {
  it('refuses connections past the limit, with one log line for the episode', async () => {
    const logLines: string[] = []
    const { app, port } = await listening({ logLines, env: { LOG_LEVEL: 'info' } })
    // The real limit is 10 000; a small one shows the same mechanism without 10 000 sockets.
    app.server.maxConnections = 3
    const held = await Promise.all([rawConnect(port), rawConnect(port), rawConnect(port)])
    const refused = await Promise.all(Array.from({ length: 5 }, () => rawConnect(port)))
    // Node closes each refused connection at accept, without a byte.
    expect(await Promise.all(refused.map((c) => c.closed))).toEqual(['', '', '', '', ''])
    const limitLines = () => logLines.filter((l) => l.includes('open connection limit reached'))
    expect(limitLines()).toHaveLength(1)
    expect(JSON.parse(limitLines()[0]!)).toMatchObject({ level: 40, maxConnections: 3 })

    for (const c of held) c.socket.destroy()
    await Promise.all(held.map((c) => c.closed))
    await expect.poll(() => logLines.some((l) => l.includes('below the limit again'))).toBe(true)
  })
})
