import { Agent, request } from 'undici'
import { describe, expect, it, onTestFinished } from 'vitest'
import { BrokerError } from '../../client/src/index.js'
import { SECRETS } from '../helpers/broker.js'
import { brokerClient } from '../helpers/broker-client.js'
import { startListeningBroker } from '../helpers/listening-broker.js'

async function thrown(p: Promise<unknown>): Promise<BrokerError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(BrokerError)
  return err as BrokerError
}

/** Everything an error could carry into a log line: message, stack, own fields, its cause's. */
function everything(err: Error): string {
  const cause =
    err.cause instanceof Error ? `${err.cause.message} ${err.cause.stack} ${JSON.stringify(err.cause)}` : ''
  return `${err.message} ${err.stack} ${JSON.stringify(err)} ${String(err)} ${cause}`
}

/** Credentials that fail upstream: one refused (no secret matches), one Adobe is down for. */
const FAILING = {
  'ims-refused': {
    type: 'ims',
    environment: 'production',
    clientId: 'ims-refused-client',
    clientSecret: { env: 'TEST_IMS_SECRET' },
    scopes: ['openid'],
  },
  'ims-down': {
    type: 'ims',
    environment: 'production',
    clientId: 'ims-down-client',
    clientSecret: { env: 'TEST_IMS_SECRET' },
    scopes: ['openid'],
  },
}

describe('client: broker outages and errors', () => {
  it('broker stopped: a cached valid token is still used; without one, a clear error with its cause', async () => {
    const b = await startListeningBroker()
    const client = brokerClient(b.url, { timeoutMs: 2000 })
    const token = await client.token('adobe-ims')
    await b.app.close()

    expect(await client.headers('adobe-ims')).toEqual(token.headers)
    const res = await client.fetch('adobe-ims', `${b.sim.url}/sample/v1/whoami`)
    expect(res.status).toBe(200)
    await res.body?.cancel()

    // An explicit minimum the cached token cannot meet is not papered over.
    const unmet = await thrown(client.token('adobe-ims', { minTtl: 86_400 }))
    expect(unmet.code).toBe('BROKER_UNREACHABLE')

    const cold = brokerClient(b.url, { timeoutMs: 2000 })
    // Through the interceptor, the same error fails the request.
    const agent = new Agent()
    onTestFinished(() => agent.close())
    const viaInterceptor = await thrown(
      request(`${b.sim.url}/sample/v1/whoami`, { dispatcher: agent.compose(cold.interceptor('adobe-ims')) }),
    )
    expect(viaInterceptor.code).toBe('BROKER_UNREACHABLE')
    const err = await thrown(cold.token('adobe-ims'))
    expect(err.code).toBe('BROKER_UNREACHABLE')
    expect(err.statusCode).toBeUndefined()
    expect(err.credential).toBe('adobe-ims')
    expect(err.message).toContain(b.url)
    expect(err.message).toContain('unreachable')
    expect(err.cause).toBeInstanceOf(Error)
    expect((err.cause as { code?: string }).code).toBe('ECONNREFUSED')
    for (const e of [unmet, err, viaInterceptor]) {
      expect(everything(e)).not.toContain(SECRETS.keyAll)
      expect(everything(e)).not.toContain(token.access_token)
    }
  })

  it('broker errors surface with their status, code and message (and Retry-After); no key or token in them', async () => {
    const b = await startListeningBroker({
      behave: { 'ims-down-client': { mode: 'error5xx', retryAfter: 7 } },
      credentials: FAILING,
    })
    const client = brokerClient(b.url)
    const held = await client.token('adobe-ims')
    const badKey = 'bad-key-CANARY-93e1f0'
    const stranger = brokerClient(b.url, { key: badKey })
    const limited = brokerClient(b.url, { key: SECRETS.keyIms })

    const cases: Array<[Promise<unknown>, number, string]> = [
      [stranger.token('adobe-ims'), 401, 'UNAUTHENTICATED'],
      [limited.token('marketplace'), 403, 'FORBIDDEN'],
      [client.token('no-such-credential'), 404, 'CREDENTIAL_NOT_FOUND'],
      [client.token('ims-refused'), 502, 'UPSTREAM_REJECTED'],
      [client.token('ims-down'), 503, 'UPSTREAM_UNAVAILABLE'],
    ]
    for (const [p, status, code] of cases) {
      const err = await thrown(p)
      expect(err.statusCode, code).toBe(status)
      expect(err.code).toBe(code)
      expect(err.message).toContain(`${status} ${code}`)
      if (code === 'UPSTREAM_UNAVAILABLE') expect(err.retryAfter).toBeGreaterThan(0)
      for (const canary of [SECRETS.keyAll, SECRETS.keyIms, badKey, SECRETS.ims, held.access_token]) {
        expect(everything(err)).not.toContain(canary)
      }
    }
    // The refusal is not cached: a good call still works.
    expect((await client.token('adobe-ims')).access_token).toBe(held.access_token)
  })

  it('refuses a bad url, key or minTtl without naming the key', async () => {
    const { createBrokerClient } = await import('../../client/src/index.js')
    expect(() => createBrokerClient({ url: 'not a url', key: SECRETS.keyAll })).toThrow(/url/)
    expect(() => createBrokerClient({ url: 'ftp://x', key: SECRETS.keyAll })).toThrow(/url/)
    expect(() => createBrokerClient({ url: 'http://127.0.0.1:1', key: '' })).toThrow(/key is required/)
    const client = brokerClient('http://127.0.0.1:1')
    await expect(client.token('adobe-ims', { minTtl: -1 })).rejects.toThrow(/minTtl/)
  })
})
