import { Readable } from 'node:stream'
import { Agent, FormData, request } from 'undici'
import { describe, expect, it, onTestFinished } from 'vitest'
import { EQP_APP_ID, IMS_CLIENT_ID } from '../helpers/broker.js'
import { brokerClient } from '../helpers/broker-client.js'
import { startListeningBroker } from '../helpers/listening-broker.js'

const SAMPLE = '/sample/v1/whoami'

function composed(interceptor: Parameters<Agent['compose']>[0]) {
  const agent = new Agent()
  onTestFinished(() => agent.close())
  return agent.compose(interceptor)
}

describe('client: a token Adobe refuses is replaced once and the request retried once', () => {
  it('fetch(): 401, one refresh naming the rejected token, one retry, success', async () => {
    const b = await startListeningBroker()
    const client = brokerClient(b.url)
    const old = await client.token('adobe-ims')
    expect(b.sim.revoke({ token: old.access_token })).toBe(1)
    const issued = b.sim.issued(IMS_CLIENT_ID)

    const res = await client.fetch('adobe-ims', `${b.sim.url}${SAMPLE}`)
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ client_id: IMS_CLIENT_ID, resource: 'sample' })
    expect(b.sim.resourceCalls()).toEqual({ 200: 1, 401: 1 })
    expect(b.refreshes('adobe-ims')).toHaveLength(1)
    expect(b.sim.issued(IMS_CLIENT_ID)).toBe(issued + 1)
    // The new token is cached: the next call goes straight through.
    const fresh = await client.token('adobe-ims')
    expect(fresh.access_token).not.toBe(old.access_token)
    expect((await client.fetch('adobe-ims', `${b.sim.url}${SAMPLE}`)).status).toBe(200)
    expect(b.gets('adobe-ims')).toHaveLength(1)
  })

  it('the undici interceptor: 401, one refresh, one retry, success (EQP user resource)', async () => {
    const b = await startListeningBroker()
    const client = brokerClient(b.url)
    const old = await client.token('marketplace')
    b.sim.revoke({ token: old.access_token })
    const issued = b.sim.issued(EQP_APP_ID)

    const dispatcher = composed(client.interceptor('marketplace'))
    const res = await request(`${b.sim.url}/rest/v1/users/${old.mage_id}`, { dispatcher })
    expect(res.statusCode).toBe(200)
    expect(await res.body.json()).toMatchObject({ mage_id: old.mage_id })
    expect(b.sim.resourceCalls()).toEqual({ 200: 1, 401: 1 })
    expect(b.refreshes('marketplace')).toHaveLength(1)
    expect(b.sim.issued(EQP_APP_ID)).toBe(issued + 1)
  })

  it('50 concurrent requests with one revoked token: one refresh, one mint, every request succeeds', async () => {
    const b = await startListeningBroker()
    const client = brokerClient(b.url)
    const old = await client.token('adobe-ims')
    b.sim.revoke({ token: old.access_token })
    const issued = b.sim.issued(IMS_CLIENT_ID)
    const dispatcher = composed(client.interceptor('adobe-ims'))

    const statuses = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        if (i % 2 === 0) return (await client.fetch('adobe-ims', `${b.sim.url}${SAMPLE}`)).status
        const res = await request(`${b.sim.url}${SAMPLE}`, { dispatcher })
        await res.body.dump()
        return res.statusCode
      }),
    )
    expect(statuses).toEqual(Array(50).fill(200))
    expect(b.refreshes('adobe-ims')).toHaveLength(1)
    expect(b.sim.issued(IMS_CLIENT_ID)).toBe(issued + 1)
    expect(b.sim.resourceCalls()).toEqual({ 200: 50, 401: 50 })
  })

  it('a resource that keeps answering 401 is returned as it is after one retry, never a loop', async () => {
    const b = await startListeningBroker({ behave: { [IMS_CLIENT_ID]: { resource: 'unauthorized' } } })
    const client = brokerClient(b.url)

    const res = await client.fetch('adobe-ims', `${b.sim.url}${SAMPLE}`)
    expect(res.status).toBe(401)
    expect(await res.json()).toMatchObject({ error: 'unauthorized' })
    expect(b.sim.resourceCalls()).toEqual({ 401: 2 })
    expect(b.refreshes('adobe-ims')).toHaveLength(1)

    const dispatcher = composed(client.interceptor('adobe-ims'))
    const res2 = await request(`${b.sim.url}${SAMPLE}`, { dispatcher })
    expect(res2.statusCode).toBe(401)
    expect(await res2.body.json()).toMatchObject({ error: 'unauthorized' })
    expect(b.sim.resourceCalls()).toEqual({ 401: 4 })
    expect(b.refreshes('adobe-ims')).toHaveLength(2)
  })

  it('a request whose body is a stream is not retried', async () => {
    const b = await startListeningBroker()
    const client = brokerClient(b.url)
    const old = await client.token('adobe-ims')
    b.sim.revoke({ token: old.access_token })

    const stream = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode('{"a":1}'))
        c.close()
      },
    })
    const res = await client.fetch('adobe-ims', `${b.sim.url}${SAMPLE}`, {
      method: 'POST',
      body: stream,
      duplex: 'half',
    })
    expect(res.status).toBe(401)
    await res.body?.cancel()

    const dispatcher = composed(client.interceptor('adobe-ims'))
    const res2 = await request(`${b.sim.url}${SAMPLE}`, {
      method: 'POST',
      body: Readable.from(['{"a":1}']),
      dispatcher,
    })
    expect(res2.statusCode).toBe(401)
    await res2.body.dump()
    expect(b.sim.resourceCalls()).toEqual({ 401: 2 })
    expect(b.refreshes('adobe-ims')).toHaveLength(0)

    // A string body is replayed.
    const res3 = await client.fetch('adobe-ims', `${b.sim.url}${SAMPLE}`, { method: 'POST', body: '{"a":1}' })
    expect(res3.status).toBe(200)
    await res3.body?.cancel()
  })

  it('fetch() and the interceptor share one rule: bytes of any view are replayed, forms are not', async () => {
    const b = await startListeningBroker()
    const client = brokerClient(b.url)
    const dispatcher = composed(client.interceptor('adobe-ims'))
    const json = new TextEncoder().encode('{"a":1}')

    // The interceptor retries an ArrayBuffer and a DataView body, as fetch() does. undici's dispatch
    // sends both (its request() types name fewer bodies than it accepts).
    for (const body of [json.buffer.slice(0), new DataView(json.buffer.slice(0))]) {
      b.sim.revoke({ token: (await client.token('adobe-ims')).access_token })
      const res = await request(`${b.sim.url}${SAMPLE}`, {
        method: 'POST',
        body: body as unknown as Uint8Array,
        dispatcher,
      })
      expect(res.statusCode).toBe(200)
      await res.body.dump()
    }
    b.sim.revoke({ token: (await client.token('adobe-ims')).access_token })
    const viaFetch = await client.fetch('adobe-ims', `${b.sim.url}${SAMPLE}`, {
      method: 'POST',
      body: json.buffer.slice(0),
    })
    expect(viaFetch.status).toBe(200)
    await viaFetch.body?.cancel()
    expect(b.sim.resourceCalls()).toEqual({ 200: 3, 401: 3 })
    expect(b.refreshes('adobe-ims')).toHaveLength(3)

    // A form (it may hold files) is sent once: its 401 comes back as it is.
    b.sim.revoke({ token: (await client.token('adobe-ims')).access_token })
    const form = new FormData()
    form.append('file', new Blob(['{"a":1}']), 'a.json')
    const formRes = await client.fetch('adobe-ims', `${b.sim.url}${SAMPLE}`, { method: 'POST', body: form })
    expect(formRes.status).toBe(401)
    await formRes.body?.cancel()
    expect(b.refreshes('adobe-ims')).toHaveLength(3)
  })

  it("keeps the caller's own headers and replaces any Authorization it brought", async () => {
    const b = await startListeningBroker()
    const client = brokerClient(b.url)
    const res = await client.fetch('adobe-ims', `${b.sim.url}${SAMPLE}`, {
      headers: { authorization: 'Bearer stale', 'x-request-id': 'r-1' },
    })
    expect(res.status).toBe(200)
    await res.body?.cancel()
    const dispatcher = composed(client.interceptor('adobe-ims'))
    const res2 = await request(`${b.sim.url}${SAMPLE}`, {
      dispatcher,
      headers: ['Authorization', 'Bearer stale', 'x-request-id', 'r-2'],
    })
    expect(res2.statusCode).toBe(200)
    await res2.body.dump()
    // Sent with the broker's token the first time: the stale one never reached the resource.
    expect(b.sim.resourceCalls()).toEqual({ 200: 2 })
  })
})
