import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Simulator } from '../../src/simulator/server.js'
import { buildBroker, SECRETS, startSimulator } from '../helpers/broker.js'

/** What only a real socket shows: requests Node's HTTP parser refuses before Fastify runs. */
describe('over a real socket', () => {
  let sim: Simulator
  let app: FastifyInstance
  let base: string

  beforeAll(async () => {
    sim = await startSimulator()
    app = await buildBroker({ simUrl: sim.url })
    base = await app.listen({ port: 0, host: '127.0.0.1' })
  })
  afterAll(async () => {
    await app.close()
    await sim.close()
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
})
