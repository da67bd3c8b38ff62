import { afterEach, beforeEach, describe, expect, inject, it, onTestFinished } from 'vitest'
import { type Child, freePort, waitForStatus } from '../../tools/process.js'
import { auth, baseEnv, IMS_CLIENT_ID, SECRETS } from '../helpers/broker.js'
import { rawConnect } from '../helpers/raw-socket.js'
import { deleteKeys, redisClient, scanKeys, uniquePrefix } from '../helpers/redis-keys.js'
import { startServer } from '../helpers/server-process.js'
import { useSimulatorConfig } from '../helpers/simulator-config.js'

/** The documented bound (docs/operations.md): the process is gone within 10 s of the signal. */
const EXIT_WITHIN_MS = 10_000

const shared = useSimulatorConfig()

let server: Child | undefined
let base = ''
let port = 0
beforeEach(async () => {
  shared.sim.reset()
  port = await freePort()
  base = `http://127.0.0.1:${port}`
  server = startServer({ ...baseEnv(shared.configPath), PORT: String(port), LOG_LEVEL: 'info' })
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
    shared.sim.behave(IMS_CLIENT_ID, { latencyMs: 1500 })
    const before = shared.sim.mints(IMS_CLIENT_ID)
    const inflight = fetch(`${base}/v1/tokens/adobe-ims/refresh`, {
      method: 'POST',
      headers: { ...auth(SECRETS.keyAll), 'content-type': 'application/json' },
      body: JSON.stringify({ rejected_token: current }),
    })
    // In flight for real: the broker's mint has reached upstream.
    while (shared.sim.mints(IMS_CLIENT_ID) === before) await new Promise((r) => setTimeout(r, 10))

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

  it('SIGTERM with connections that never finished a request: they are closed, the close steps run, exit 0', async () => {
    // With Redis this time, so that closing the store means a real QUIT.
    await server!.stop(1000)
    const redisUrl = inject('redisUrl')
    const prefix = uniquePrefix()
    onTestFinished(() => deleteKeys(redisUrl, prefix))
    const s = startServer({
      ...baseEnv(shared.configPath),
      PORT: String(port),
      LOG_LEVEL: 'info',
      REDIS_URL: redisUrl,
      REDIS_KEY_PREFIX: prefix,
    })
    server = s
    await waitForStatus(`${base}/readyz`, { child: s, timeoutMs: 15_000 })

    const stuck = await Promise.all([
      // Connected, sent nothing.
      rawConnect(port),
      // Stuck mid-headers.
      rawConnect(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n'),
      // Headers done, stuck mid-body (5 of 50 bytes).
      rawConnect(
        port,
        `POST /v1/tokens/adobe-ims/refresh HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${SECRETS.keyAll}\r\n` +
          'Content-Type: application/json\r\nContent-Length: 50\r\n\r\n{"rej',
      ),
    ])
    // Connections are accepted in order: once a later one is answered, the server holds all three.
    const res = await fetch(`${base}/healthz`)
    expect(res.status).toBe(200)
    await res.text()

    const signalledAt = Date.now()
    s.signal('SIGTERM')
    const { code, signal, at } = await s.exited
    expect({ code, signal }).toEqual({ code: 0, signal: null })
    expect(at - signalledAt).toBeLessThan(EXIT_WITHIN_MS)
    // Each stuck connection was closed by the broker, not left to time out.
    await Promise.all(stuck.map((c) => c.closed))
    const lines = s
      .stdout()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    // The three, and any idle keep-alive connection (the fetch above, readiness polls).
    expect(lines.find((l) => l.msg === 'draining')?.closed).toBeGreaterThanOrEqual(3)
    // The close steps ran, each to its end: mints settled (locks released), store, upstream pool.
    expect(lines.find((l) => l.msg === 'shutdown complete')).toMatchObject({
      locks: 'done',
      store: 'done',
      pool: 'done',
    })
    expect(s.stderr()).toBe('')
    // It took the fleet's tokens to Redis and left no lock behind.
    const redis = redisClient(redisUrl)
    onTestFinished(() => void redis.quit())
    const keys = await scanKeys(redis, `${prefix}*`)
    expect(keys.length).toBeGreaterThan(0)
    expect(keys.filter((k) => k.includes('lock'))).toEqual([])
  }, 30_000)
})
