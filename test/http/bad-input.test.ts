import type { FastifyInstance, InjectOptions } from 'fastify'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { Simulator } from '../../src/simulator/server.js'
import { buildBroker, IMS_CLIENT_ID, startSimulator } from '../helpers/broker.js'
import { ALL, expectError, getToken, JSON_HEADERS } from './support.js'

let sim: Simulator
let app: FastifyInstance
let mintsAtStart: number
beforeAll(async () => {
  sim = await startSimulator()
  app = await buildBroker({ simUrl: sim.url })
  mintsAtStart = sim.mints()
})
afterAll(async () => {
  await app.close()
  await sim.close()
})

/** After every bad input: the broker still serves, and nothing reached upstream. */
afterEach(async () => {
  const { res } = await getToken(app, 'adobe-ims')
  expect(res.statusCode).toBe(200)
  expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200)
  expect(sim.mints()).toBe(mintsAtStart)
})

describe('credential ids in the path', () => {
  const ids: Array<[string, string]> = [
    ['traversal', '..%2F..%2Fetc'],
    ['encoded traversal to a real id', '..%2Fadobe-ims'],
    ['600 characters', 'a'.repeat(600)],
    ['65 characters (one past the limit)', 'a'.repeat(65)],
    ['upper case', 'ADOBE-IMS'],
    ['a NUL byte', 'adobe%00ims'],
    ['a trailing space', 'adobe-ims%20'],
    ['a leading dot', '.adobe-ims'],
    ['unicode', 'adob%C3%A9-ims'],
    ['a newline', 'adobe-ims%0A'],
  ]
  it.each(ids)('%s → 400 BAD_REQUEST on GET and refresh', async (_name, id) => {
    const get = await app.inject({ url: `/v1/tokens/${id}`, headers: ALL })
    expectError(get, 400, 'BAD_REQUEST')
    expect(get.json().message).toMatch(/credential/)
    const post = await app.inject({ method: 'POST', url: `/v1/tokens/${id}/refresh`, headers: ALL })
    expectError(post, 400, 'BAD_REQUEST')
  })

  it('a literal slash or dot-dot segment never reaches another route', async () => {
    for (const url of ['/v1/tokens/a/b', '/v1/tokens/%2e%2e', '/v1/tokens/..%2f..%2fv1%2fcredentials']) {
      const res = await app.inject({ url, headers: ALL })
      expect(res.statusCode, url).toBeGreaterThanOrEqual(400)
      expect(res.statusCode, url).toBeLessThan(500)
      expect(Object.keys(res.json()).sort()).toEqual(['code', 'error', 'message', 'statusCode'])
    }
  })
})

describe('min_ttl', () => {
  const values = ['abc', '-1', '999999', '86401', '1.5', '', '1e3', '0x10', ' 5', '5abc', 'NaN', 'Infinity']
  it.each(values)('min_ttl=%j → 400 BAD_REQUEST', async (value) => {
    const res = await app.inject({
      url: `/v1/tokens/adobe-ims?min_ttl=${encodeURIComponent(value)}`,
      headers: ALL,
    })
    expectError(res, 400, 'BAD_REQUEST')
    expect(res.json().message).toMatch(/min_ttl/)
  })

  it('a repeated min_ttl or an unknown parameter → 400', async () => {
    expectError(
      await app.inject({ url: '/v1/tokens/adobe-ims?min_ttl=1&min_ttl=2', headers: ALL }),
      400,
      'BAD_REQUEST',
    )
    expectError(await app.inject({ url: '/v1/tokens/adobe-ims?minttl=5', headers: ALL }), 400, 'BAD_REQUEST')
  })

  it('the bounds 0 and 86400 are valid input (86400 is then unreachable: still a 400, but of meaning)', async () => {
    expect((await app.inject({ url: '/v1/tokens/adobe-ims?min_ttl=0', headers: ALL })).statusCode).toBe(200)
    const res = await app.inject({ url: '/v1/tokens/adobe-ims?min_ttl=86400', headers: ALL })
    expectError(res, 400, 'BAD_REQUEST')
    expect(res.json().message).toMatch(/cannot be met/)
  })
})

describe('refresh bodies', () => {
  const post = (payload: string | Buffer, contentType = 'application/json'): InjectOptions => ({
    method: 'POST',
    url: '/v1/tokens/adobe-ims/refresh',
    headers: { ...ALL, 'content-type': contentType },
    payload,
  })

  const bad: Array<[string, string, string?]> = [
    ['broken JSON', '{"rejected_token": '],
    ['a bare word', 'hello'],
    ['a number rejected_token', '{"rejected_token": 5}'],
    ['a boolean rejected_token', '{"rejected_token": true}'],
    ['an object rejected_token', '{"rejected_token": {"a": 1}}'],
    ['a null rejected_token', '{"rejected_token": null}'],
    ['an empty rejected_token', '{"rejected_token": ""}'],
    ['an array body', '["x"]'],
    ['a string body', '"x"'],
    ['a number body', '0'],
    ['a false body', 'false'],
    ['an unknown field', '{"rejected_tokn": "x"}'],
    ['a text/plain body', 'rejected_token=x', 'text/plain'],
    ['a form body', 'rejected_token=x', 'application/x-www-form-urlencoded'],
  ]
  it.each(bad)('%s → 400 BAD_REQUEST', async (_name, payload, contentType) => {
    const res = await app.inject(post(payload, contentType))
    expectError(res, 400, 'BAD_REQUEST')
  })

  it('a non-string rejected_token is refused, not coerced', async () => {
    const res = await app.inject(post('{"rejected_token": 5}'))
    expectError(res, 400, 'BAD_REQUEST')
    expect(res.json().message).toMatch(/rejected_token/)
  })

  it('a 2 MiB body → 413 PAYLOAD_TOO_LARGE', async () => {
    const big = JSON.stringify({ rejected_token: 'x'.repeat(2 * 1024 * 1024) })
    expectError(await app.inject(post(big)), 413, 'PAYLOAD_TOO_LARGE')
    expectError(await app.inject(post(' '.repeat(2 * 1024 * 1024))), 413, 'PAYLOAD_TOO_LARGE')
    // A body that is not JSON is refused for its type, whatever its size.
    expectError(await app.inject(post('x'.repeat(2 * 1024 * 1024), 'text/plain')), 400, 'BAD_REQUEST')
  })

  it('a body just over 1 MiB → 413; a valid body under it is read', async () => {
    expectError(await app.inject(post(' '.repeat(1024 * 1024 + 1))), 413, 'PAYLOAD_TOO_LARGE')
    // A padded but valid body under the limit: parsed, and the stale token just answers the current one.
    const padded = `${' '.repeat(512 * 1024)}{"rejected_token": "stale"}`
    expect((await app.inject(post(padded))).statusCode).toBe(200)
  })

  it('no body, an empty JSON body, {} and null are all accepted', async () => {
    const none = await app.inject({ method: 'POST', url: '/v1/tokens/adobe-ims/refresh', headers: ALL })
    expect(none.statusCode).toBe(200)
    for (const payload of ['', '   ', '{}', 'null']) {
      const res = await app.inject(post(payload))
      expect(res.statusCode, JSON.stringify(payload)).toBe(200)
      expect(res.json().credential).toBe('adobe-ims')
    }
    // A JSON content type with a charset is still JSON.
    const charset = await app.inject(post('{}', 'application/json; charset=utf-8'))
    expect(charset.statusCode).toBe(200)
  })

  it('a GET with a body is still served (the body is ignored)', async () => {
    const res = await app.inject({
      url: '/v1/tokens/adobe-ims',
      headers: { ...ALL, ...JSON_HEADERS },
      payload: '{x',
    })
    expect(res.statusCode).toBeLessThan(500)
  })
})

describe('headers', () => {
  it('odd Authorization values are 401, never 500', async () => {
    for (const authorization of [
      'Bearer \u0000',
      'Bearer\tkey',
      `Bearer ${'é'.repeat(100)}`,
      'Bearer  ',
      ',,,',
    ]) {
      const res = await app.inject({ url: '/v1/tokens/adobe-ims', headers: { authorization } })
      expectError(res, 401, 'UNAUTHENTICATED')
    }
  })

  it('a token from upstream is untouched by the request (no header injection)', async () => {
    const res = await app.inject({ url: '/v1/tokens/adobe-ims', headers: { ...ALL, 'x-api-key': 'evil' } })
    expect(res.statusCode).toBe(200)
    expect(res.json().headers['X-API-Key']).toBe(IMS_CLIENT_ID)
  })
})
