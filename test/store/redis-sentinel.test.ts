import calculateSlot from 'cluster-key-slot'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { credentialKey, type RedisTokenStore } from '../../src/store/redis.js'
import { type SentinelGroup, startSentinelGroup } from '../../tools/redis-topology.js'
import { uniquePrefix } from '../helpers/redis-keys.js'
import { redisStore } from '../helpers/redis-store.js'
import { eventually, makeToken, newId, storeContract } from './contract.js'

/** The store behind Sentinel: a master, a replica and three sentinels, started once for this file. */
let group: SentinelGroup

beforeAll(async () => {
  group = await startSentinelGroup()
}, 60_000)
afterAll(async () => {
  await group?.stop()
})

const make = (keyPrefix = uniquePrefix()): RedisTokenStore =>
  redisStore({
    endpoints: { mode: 'sentinel', sentinels: group.sentinels, master: group.master, tls: false },
    describe: 'sentinel',
    keyPrefix,
  })

storeContract('redis behind sentinel', async () => {
  const s = make()
  await s.connect()
  return s
})

describe('redis store behind sentinel', () => {
  it('writes to the master Sentinel names, and another instance hears of it', async () => {
    const prefix = uniquePrefix()
    const [a, b] = [make(prefix), make(prefix)]
    await Promise.all([a.connect(), b.connect()])
    const seen: string[] = []
    b.onToken((id) => seen.push(id))
    const id = newId()
    const token = makeToken()
    expect(await a.put(id, token)).toBe(true)
    await eventually(() => expect(seen).toEqual([id]))
    expect(await b.get(id)).toEqual(token)
    const master = await group.currentMaster()
    expect(master.port).toBe(group.nodes[0]?.port)
    // The store's own key names (the token written under its name on the master): every key of a
    // credential in one slot, should the data move to a Cluster.
    const admin = new Redis({ host: '127.0.0.1', port: master.port, maxRetriesPerRequest: 0 })
    onTestFinished(() => admin.disconnect())
    expect(await admin.exists(credentialKey(prefix, 'token', id))).toBe(1)
    const kinds = ['token', 'lock', 'brake', 'forced'] as const
    expect(new Set(kinds.map((kind) => calculateSlot(credentialKey(prefix, kind, id)))).size).toBe(1)
  })
})
