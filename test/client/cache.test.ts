import { describe, expect, it, vi } from 'vitest'
import { IMS_CLIENT_ID } from '../helpers/broker.js'
import { brokerClient } from '../helpers/broker-client.js'
import { startListeningBroker } from '../helpers/listening-broker.js'

describe('client cache: the broker is asked once per need', () => {
  it('1000 headers() after one token(): one broker request', async () => {
    const b = await startListeningBroker()
    const client = brokerClient(b.url)
    const token = await client.token('adobe-ims')
    for (let i = 0; i < 1000; i++) {
      const headers = await client.headers('adobe-ims')
      expect(headers).toEqual({ Authorization: `Bearer ${token.access_token}`, 'X-API-Key': IMS_CLIENT_ID })
    }
    expect(b.gets('adobe-ims')).toHaveLength(1)
    expect(b.seen).toHaveLength(1)
  })

  it('200 concurrent cold token() calls: one broker request, one token', async () => {
    const b = await startListeningBroker()
    const client = brokerClient(b.url)
    const tokens = await Promise.all(Array.from({ length: 200 }, () => client.token('marketplace')))
    expect(new Set(tokens.map((t) => t.access_token)).size).toBe(1)
    expect(tokens[0]).toMatchObject({ credential: 'marketplace', type: 'eqp' })
    expect(tokens[0]!.mage_id).toMatch(/^MAG\d{9}$/)
    expect(b.gets('marketplace')).toHaveLength(1)
  })

  it('a minTtl above what the cached token has left asks the broker with min_ttl', async () => {
    const b = await startListeningBroker({ behave: { [IMS_CLIENT_ID]: { expiresIn: 600 } } })
    let now = Date.now()
    const client = brokerClient(b.url, { now: () => now })
    await client.token('adobe-ims')
    // 200 s left on the client's clock: the default (60 s) and minTtl 150 are met from the cache.
    now += 400_000
    await client.token('adobe-ims')
    await client.token('adobe-ims', { minTtl: 150 })
    expect(b.gets('adobe-ims')).toHaveLength(1)

    const t = await client.token('adobe-ims', { minTtl: 300 })
    const gets = b.gets('adobe-ims')
    expect(gets).toHaveLength(2)
    expect(gets[1]!.query.get('min_ttl')).toBe('300')
    expect(t.expires_in).toBeGreaterThanOrEqual(300)
    // The answer is cached: asking the same again is served locally.
    await client.token('adobe-ims', { minTtl: 300 })
    expect(b.gets('adobe-ims')).toHaveLength(2)
  })

  it('refreshes in the background before the token stops meeting the default; callers do not wait', async () => {
    const b = await startListeningBroker({ behave: { [IMS_CLIENT_ID]: { expiresIn: 600 } } })
    let now = Date.now()
    const client = brokerClient(b.url, { now: () => now })
    const first = await client.token('adobe-ims')
    // 100 s left: still above the default (60 s) but inside twice it.
    now += 500_000
    const served = await client.token('adobe-ims')
    expect(served.access_token).toBe(first.access_token)
    await vi.waitFor(() => expect(b.gets('adobe-ims')).toHaveLength(2))
    expect(b.gets('adobe-ims')[1]!.query.get('min_ttl')).toBe('180')
    // The answer (here the same token, with its lifetime read afresh) is kept: no further requests.
    await vi.waitFor(async () => {
      for (let i = 0; i < 100; i++) await client.headers('adobe-ims')
      expect(b.gets('adobe-ims')).toHaveLength(2)
    })
  })
})
