import type { FastifyInstance, InjectOptions } from 'fastify'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import type { Simulator } from '../../src/simulator/server.js'
import { auth, brokerDocument, buildBroker, SECRETS, startSimulator } from '../helpers/broker.js'
import { ALL, expectError, IMS_ONLY, JSON_HEADERS } from './support.js'

let sim: Simulator
let app: FastifyInstance
beforeAll(async () => {
  sim = await startSimulator()
  app = await buildBroker({ simUrl: sim.url })
})
afterAll(async () => {
  await app.close()
  await sim.close()
})

const OUTSIDE = '203.0.113.9'

/** Every /v1 route, as a function of the Authorization header to send. */
const v1Routes = (headers: Record<string, string>): InjectOptions[] => [
  { method: 'GET', url: '/v1/tokens/adobe-ims', headers },
  { method: 'GET', url: '/v1/tokens/marketplace?min_ttl=10', headers },
  { method: 'POST', url: '/v1/tokens/adobe-ims/refresh', headers },
  { method: 'GET', url: '/v1/credentials', headers },
]

describe('401 UNAUTHENTICATED', () => {
  const cases: Array<[string, Record<string, string>]> = [
    ['no Authorization header', {}],
    ['an unknown key', auth('not-a-known-key')],
    [
      'a known key sent as Basic',
      { authorization: `Basic ${Buffer.from(`x:${SECRETS.keyAll}`).toString('base64')}` },
    ],
    ['a known key with the Basic scheme', { authorization: `Basic ${SECRETS.keyAll}` }],
    ['a known key without a scheme', { authorization: SECRETS.keyAll }],
    ['a 20 kB Authorization header', { authorization: `Bearer ${'k'.repeat(20 * 1024)}` }],
    [
      'a 20 kB header that starts with a known key',
      { authorization: `Bearer ${SECRETS.keyAll}${'k'.repeat(20 * 1024)}` },
    ],
    ['an empty bearer', { authorization: 'Bearer ' }],
    ['a bare scheme', { authorization: 'Bearer' }],
    ['two keys', { authorization: `Bearer ${SECRETS.keyAll} ${SECRETS.keyIms}` }],
    ['a known key with a suffix', { authorization: `Bearer ${SECRETS.keyAll}x` }],
  ]

  it.each(cases)('%s, on every /v1 route', async (_name, headers) => {
    for (const route of v1Routes(headers)) {
      const res = await app.inject(route)
      expectError(res, 401, 'UNAUTHENTICATED')
      expect(res.body).not.toContain(SECRETS.keyAll)
    }
  })

  it('an unknown key asking for an unknown credential gets 401, not 404', async () => {
    expectError(
      await app.inject({ url: '/v1/tokens/no-such-thing', headers: auth('nope') }),
      401,
      'UNAUTHENTICATED',
    )
    expectError(
      await app.inject({ method: 'POST', url: '/v1/tokens/no-such-thing/refresh', headers: {} }),
      401,
      'UNAUTHENTICATED',
    )
  })

  it('the key is checked before the body is looked at', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/tokens/adobe-ims/refresh',
      headers: { ...JSON_HEADERS, ...auth('nope') },
      payload: '{broken',
    })
    expectError(res, 401, 'UNAUTHENTICATED')
  })
})

describe('403 FORBIDDEN', () => {
  it('a client may not use a credential outside its list', async () => {
    const before = sim.mints()
    const get = await app.inject({ url: '/v1/tokens/marketplace', headers: IMS_ONLY })
    expectError(get, 403, 'FORBIDDEN')
    const post = await app.inject({
      method: 'POST',
      url: '/v1/tokens/marketplace/refresh',
      headers: IMS_ONLY,
    })
    expectError(post, 403, 'FORBIDDEN')
    expect(get.body).not.toContain(SECRETS.keyIms)
    // Refused before any upstream work.
    expect(sim.mints()).toBe(before)
    // The same client is served the credential it may use.
    expect((await app.inject({ url: '/v1/tokens/adobe-ims', headers: IMS_ONLY })).statusCode).toBe(200)
  })

  it('a source address outside ALLOWED_CIDRS is refused on every route, keyed or not', async () => {
    const routes: InjectOptions[] = [
      { url: '/healthz' },
      { url: '/readyz' },
      { url: '/metrics' },
      ...v1Routes(ALL),
      ...v1Routes({}),
    ]
    for (const route of routes) {
      const res = await app.inject({ ...route, remoteAddress: OUTSIDE })
      expectError(res, 403, 'FORBIDDEN')
    }
  })

  it('allowed sources include loopback, private ranges and IPv4-mapped IPv6', async () => {
    for (const remoteAddress of [
      '127.0.0.1',
      '::1',
      '10.1.2.3',
      '172.16.0.9',
      '192.168.1.1',
      '::ffff:10.0.0.1',
      'fd00::1',
    ]) {
      const res = await app.inject({ url: '/v1/tokens/adobe-ims', headers: ALL, remoteAddress })
      expect(res.statusCode, remoteAddress).toBe(200)
    }
    for (const remoteAddress of ['8.8.8.8', '::ffff:8.8.8.8', '2001:db8::1', '172.32.0.1']) {
      expectError(await app.inject({ url: '/healthz', remoteAddress }), 403, 'FORBIDDEN')
    }
  })

  it('ALLOWED_CIDRS replaces the default list', async () => {
    const narrow = await buildBroker({
      simUrl: sim.url,
      env: { ALLOWED_CIDRS: '192.0.2.0/24, 2001:db8::/32' },
    })
    try {
      expectError(await narrow.inject({ url: '/healthz' }), 403, 'FORBIDDEN') // 127.0.0.1 is no longer allowed
      expect((await narrow.inject({ url: '/healthz', remoteAddress: '192.0.2.7' })).statusCode).toBe(200)
      expect((await narrow.inject({ url: '/healthz', remoteAddress: '2001:db8::7' })).statusCode).toBe(200)
      const token = await narrow.inject({
        url: '/v1/tokens/adobe-ims',
        headers: ALL,
        remoteAddress: '192.0.2.7',
      })
      expect(token.statusCode).toBe(200)
    } finally {
      await narrow.close()
    }
  })
})

describe('404 CREDENTIAL_NOT_FOUND', () => {
  it('an unknown credential, for any authenticated client, on GET and refresh', async () => {
    for (const headers of [ALL, IMS_ONLY]) {
      // A restricted client learns "not found", not "forbidden": checked before the client's list.
      expectError(await app.inject({ url: '/v1/tokens/no-such-thing', headers }), 404, 'CREDENTIAL_NOT_FOUND')
      expectError(
        await app.inject({ method: 'POST', url: '/v1/tokens/no-such-thing/refresh', headers }),
        404,
        'CREDENTIAL_NOT_FOUND',
      )
    }
  })

  it('an unknown route is a 404 in the same JSON shape', async () => {
    for (const route of [
      { url: '/nope' },
      { url: '/v1/tokens' },
      { url: '/v1/tokens/adobe-ims/refresh' },
      { method: 'DELETE' as const, url: '/v1/tokens/adobe-ims', headers: ALL },
      { url: '/v2/tokens/adobe-ims', headers: ALL },
    ]) {
      const res = await app.inject(route)
      expectError(res, 404, 'NOT_FOUND')
    }
  })
})

describe('a client with a list of keys (rotation)', () => {
  const NEW_KEYS = ['claims-key-CANARY-new-1a', 'claims-key-CANARY-new-2b']

  it("each key of the list authenticates the same client, with that client's rights", async () => {
    const doc = brokerDocument(sim.url)
    ;(doc.clients as Record<string, unknown>)['claims-service'] = {
      key: [{ env: 'TEST_KEY_IMS' }, { env: 'CLAIMS_KEY_NEW_1' }, { env: 'CLAIMS_KEY_NEW_2' }],
      credentials: ['adobe-ims'],
    }
    const broker = await buildBroker({
      simUrl: sim.url,
      document: doc,
      env: { CLAIMS_KEY_NEW_1: NEW_KEYS[0]!, CLAIMS_KEY_NEW_2: NEW_KEYS[1]! },
    })
    onTestFinished(() => broker.close())
    for (const key of [SECRETS.keyIms, ...NEW_KEYS]) {
      const ims = await broker.inject({ url: '/v1/tokens/adobe-ims', headers: auth(key) })
      expect(ims.statusCode).toBe(200)
      // The same client, not another one: claims-service may not use marketplace.
      expectError(
        await broker.inject({ url: '/v1/tokens/marketplace', headers: auth(key) }),
        403,
        'FORBIDDEN',
      )
    }
    expect(
      (await broker.inject({ url: '/v1/tokens/marketplace', headers: auth(SECRETS.keyAll) })).statusCode,
    ).toBe(200)
    for (const key of ['claims-key-CANARY-new-3c', `${NEW_KEYS[0]}x`, NEW_KEYS[1]!.slice(0, -1)]) {
      expectError(
        await broker.inject({ url: '/v1/tokens/adobe-ims', headers: auth(key) }),
        401,
        'UNAUTHENTICATED',
      )
    }
  })
})
