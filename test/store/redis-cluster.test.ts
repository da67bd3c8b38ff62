import calculateSlot from 'cluster-key-slot'
import { Cluster } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { credentialKey, type RedisTokenStore } from '../../src/store/redis.js'
import { type RedisCluster, startCluster } from '../../tools/redis-topology.js'
import { uniquePrefix } from '../helpers/redis-keys.js'
import { redisStore } from '../helpers/redis-store.js'
import { eventually, makeToken, newId, storeContract } from './contract.js'

/** The store on a Redis Cluster of three masters, started once for this file. */
let cluster: RedisCluster

beforeAll(async () => {
  cluster = await startCluster(0)
}, 60_000)
afterAll(async () => {
  await cluster?.stop()
})

const make = (keyPrefix = uniquePrefix()): RedisTokenStore =>
  redisStore({
    endpoints: { mode: 'cluster', nodes: cluster.nodes, tls: false },
    describe: 'cluster',
    keyPrefix,
  })

storeContract('redis cluster', async () => {
  const s = make()
  await s.connect()
  return s
})

describe('redis store on a cluster', () => {
  it('keeps every key of a credential in one slot, whatever the prefix', () => {
    for (const prefix of ['token-broker:', 'a{b:', 'x}y:', '{team}:']) {
      const id = newId()
      const slots = new Set(
        ['token', 'lock', 'brake'].map((k) => calculateSlot(credentialKey(prefix, k as 'token', id))),
      )
      expect(slots.size).toBe(1)
    }
  })

  it('spreads credentials over all masters, and a write on any reaches a replica subscribed elsewhere', async () => {
    const prefix = uniquePrefix()
    const [a, b] = [make(prefix), make(prefix)]
    await Promise.all([a.connect(), b.connect()])
    const seen: string[] = []
    b.onToken((id) => seen.push(id))
    const ids = Array.from({ length: 30 }, newId)
    const masters = new Set<number>()
    for (const id of ids) {
      expect(await a.put(id, makeToken())).toBe(true)
      masters.add((await cluster.masterOf(calculateSlot(credentialKey(prefix, 'token', id)))).port)
    }
    expect(masters.size).toBe(3)
    await eventually(() => expect(seen.sort()).toEqual([...ids].sort()))
  })

  it('reads many credentials at once in one pipeline per master (warm-up)', async () => {
    const prefix = uniquePrefix()
    const s = make(prefix)
    await s.connect()
    const ids = Array.from({ length: 200 }, newId)
    const tokens = new Map(ids.map((id) => [id, makeToken()]))
    for (const [id, t] of tokens) await s.put(id, t)
    const absent = newId()
    const read = await s.getMany([...ids, absent])
    expect(read.size).toBe(200)
    for (const [id, t] of tokens) expect(read.get(id)).toEqual(t)
    // The keys really are on the three masters, read through ioredis's cluster client.
    const admin = new Cluster(cluster.nodes)
    try {
      expect(await admin.exists(credentialKey(prefix, 'token', ids[0] ?? ''))).toBe(1)
    } finally {
      admin.disconnect()
    }
  })
})
