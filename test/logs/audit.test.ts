// Audit lines as operators read them: through the real app (app.inject) and from the stdout of the
// real process. `access.denied` at warn, the others at info; none per successful read; never a
// secret, a key or a full token.
import type { FastifyInstance } from 'fastify'
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import type { Simulator } from '../../src/simulator/server.js'
import { freePort, waitForStatus } from '../../tools/process.js'
import {
  auth,
  baseEnv,
  brokerDocument,
  buildBroker,
  SECRETS,
  startSimulator,
  writeConfig,
} from '../helpers/broker.js'
import { shiftableClock } from '../helpers/manual-clock.js'
import { startServer } from '../helpers/server-process.js'
import { ALL, IMS_ONLY } from '../http/support.js'

interface Line {
  level: number
  event?: string
  [field: string]: unknown
}
const INFO = 30
const WARN = 40

const parse = (text: string): Line[] =>
  text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Line)
const audit = (lines: Line[]) => lines.filter((l) => l.event !== undefined)

/** Nothing an audit line carries may be a secret, a client key or a token. */
function expectNothingSecret(lines: Line[], tokens: string[]): void {
  const text = JSON.stringify(lines)
  for (const value of [...Object.values(SECRETS), ...tokens]) expect(text).not.toContain(value)
}

let sim: Simulator
beforeAll(async () => {
  sim = await startSimulator()
})
afterAll(async () => {
  await sim.close()
})

describe('audit lines, through the app', () => {
  let app: FastifyInstance
  let logLines: string[]
  const lines = () => parse(logLines.join(''))
  afterEach(async () => {
    await app?.close()
  })

  it('access.denied (warn): no key, a wrong key, a credential the client may not use, an address not allowed', async () => {
    logLines = []
    app = await buildBroker({ simUrl: sim.url, logLines, env: { LOG_LEVEL: 'info' } })
    const from = logLines.length
    await app.inject({ url: '/v1/tokens/adobe-ims' })
    await app.inject({ url: '/v1/tokens/marketplace', headers: auth('wrong-key-CANARY-3c1e') })
    await app.inject({ url: '/v1/tokens/attacker-chosen-CANARY-77aa', headers: auth('x') })
    await app.inject({ url: '/v1/tokens/marketplace', headers: IMS_ONLY })
    await app.inject({ url: '/v1/tokens/adobe-ims', headers: ALL, remoteAddress: '203.0.113.9' })
    const denied = parse(logLines.slice(from).join(''))
    expect(
      denied.map(({ level, event, client, credential, reason }) => ({
        level,
        event,
        client,
        credential,
        reason,
      })),
    ).toEqual([
      {
        level: WARN,
        event: 'access.denied',
        client: null,
        credential: 'adobe-ims',
        reason: 'unauthenticated',
      },
      {
        level: WARN,
        event: 'access.denied',
        client: null,
        credential: 'marketplace',
        reason: 'unauthenticated',
      },
      { level: WARN, event: 'access.denied', client: null, credential: null, reason: 'unauthenticated' },
      {
        level: WARN,
        event: 'access.denied',
        client: 'claims-service',
        credential: 'marketplace',
        reason: 'credential_not_allowed',
      },
      {
        level: WARN,
        event: 'access.denied',
        client: null,
        credential: 'adobe-ims',
        reason: 'address_not_allowed',
      },
    ])
    const text = logLines.join('')
    expect(text).not.toContain('wrong-key-CANARY-3c1e')
    expect(text).not.toContain('attacker-chosen-CANARY-77aa')
    expectNothingSecret(lines(), [])
  })

  it('token.minted at warm-up and on refresh, token.refresh_requested, and nothing per successful read', async () => {
    logLines = []
    const clock = shiftableClock()
    app = await buildBroker({ simUrl: sim.url, logLines, env: { LOG_LEVEL: 'info' }, clock })
    const warm = audit(lines())
    expect(
      warm
        .map(({ level, event, credential, reason, secret }) => ({
          level,
          event,
          credential,
          reason,
          secret,
        }))
        .sort((a, b) => String(a.credential).localeCompare(String(b.credential))),
    ).toEqual([
      { level: INFO, event: 'token.minted', credential: 'adobe-ims', reason: 'warm-up', secret: 0 },
      { level: INFO, event: 'token.minted', credential: 'marketplace', reason: 'warm-up', secret: 0 },
    ])
    const first = (await app.inject({ url: '/v1/tokens/adobe-ims', headers: ALL })).json()
      .access_token as string
    expect(warm.find((l) => l.credential === 'adobe-ims')?.token).toMatch(/^[0-9a-f]{8}$/)

    const from = logLines.length
    for (let i = 0; i < 20; i++) {
      expect((await app.inject({ url: '/v1/tokens/adobe-ims', headers: ALL })).statusCode).toBe(200)
      expect((await app.inject({ url: '/v1/credentials', headers: ALL })).statusCode).toBe(200)
    }
    expect(logLines.slice(from)).toEqual([])

    clock.shift(11_000)
    const refreshed = await app.inject({
      method: 'POST',
      url: '/v1/tokens/adobe-ims/refresh',
      headers: { ...ALL, 'content-type': 'application/json' },
      payload: JSON.stringify({ rejected_token: first }),
    })
    const second = refreshed.json().access_token as string
    expect(second).not.toBe(first)
    const after = audit(parse(logLines.slice(from).join('')))
    expect(after).toMatchObject([
      {
        level: INFO,
        event: 'token.minted',
        credential: 'adobe-ims',
        reason: 'rejected_token',
        secret: 0,
      },
      {
        level: INFO,
        event: 'token.refresh_requested',
        client: 'ops-tools',
        credential: 'adobe-ims',
        minted: true,
      },
    ])
    expectNothingSecret(lines(), [first, second])
  })
})

describe('audit lines, from the real process', () => {
  it('are JSON lines on stdout with an event field', async () => {
    const config = await writeConfig(brokerDocument(sim.url))
    onTestFinished(() => config.cleanup())
    const port = await freePort()
    const base = `http://127.0.0.1:${port}`
    const server = startServer({ ...baseEnv(config.path), PORT: String(port), LOG_LEVEL: 'info' })
    onTestFinished(async () => {
      await server.stop(1000)
    })
    await waitForStatus(`${base}/readyz`, { child: server, timeoutMs: 15_000 })
    const token = (
      (await (await fetch(`${base}/v1/tokens/adobe-ims`, { headers: ALL })).json()) as {
        access_token: string
      }
    ).access_token
    expect((await fetch(`${base}/v1/tokens/adobe-ims`, { headers: auth('nope') })).status).toBe(401)
    const res = await fetch(`${base}/v1/tokens/adobe-ims/refresh`, {
      method: 'POST',
      headers: { ...IMS_ONLY, 'content-type': 'application/json' },
      body: JSON.stringify({ rejected_token: token }),
    })
    expect(res.status).toBe(200)
    await res.arrayBuffer()
    await server.stop(5000)

    const lines = parse(server.stdout())
    const events = audit(lines).map(({ event, level, reason, client, credential, minted }) => ({
      event,
      level,
      reason,
      client,
      credential,
      minted,
    }))
    expect(events.filter((e) => e.event === 'token.minted' && e.reason === 'warm-up')).toHaveLength(2)
    expect(events.filter((e) => e.event === 'token.minted' && e.reason === 'rejected_token')).toHaveLength(1)
    expect(events).toContainEqual({
      event: 'access.denied',
      level: WARN,
      reason: 'unauthenticated',
      client: null,
      credential: 'adobe-ims',
      minted: undefined,
    })
    expect(events).toContainEqual({
      event: 'token.refresh_requested',
      level: INFO,
      reason: undefined,
      client: 'claims-service',
      credential: 'adobe-ims',
      minted: true,
    })
    expectNothingSecret(lines, [token])
  })
})
