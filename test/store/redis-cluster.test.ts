import calculateSlot from 'cluster-key-slot'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { credentialKey, type RedisTokenStore } from '../../src/store/redis.js'
import { sleep } from '../../tools/process.js'
import { type RedisCluster, startCluster } from '../../tools/redis-topology.js'
import { captureLog } from '../helpers/capture-log.js'
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

/**
 * A master's own counts, through a connection of its own: the HGETALLs it ran, and the reads of
 * client input it made (a round trip's bytes arrive in one read; a pipeline is one round trip).
 */
function nodeStats(port: number) {
  const node = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0 })
  onTestFinished(() => node.disconnect())
  const count = (info: string, pattern: RegExp) => Number(pattern.exec(info)?.[1] ?? 0)
  return {
    async read(): Promise<{ hgetall: number; reads: number }> {
      const info = await node.info('all')
      return {
        hgetall: count(info, /^cmdstat_hgetall:calls=(\d+)/m),
        reads: count(info, /^total_reads_processed:(\d+)/m),
      }
    },
  }
}

/** Holds every client command on one node for `ms` (CLIENT PAUSE ALL), as a node that stalls. */
async function pauseNode(port: number, ms: number): Promise<void> {
  const node = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 0 })
  try {
    await node.client('PAUSE', ms, 'ALL')
  } finally {
    node.disconnect()
  }
}

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

  it('reads many credentials at once in one round trip per master (warm-up)', async () => {
    const prefix = uniquePrefix()
    const s = make(prefix)
    await s.connect()
    const ids = Array.from({ length: 200 }, newId)
    const tokens = new Map(ids.map((id) => [id, makeToken()]))
    for (const [id, t] of tokens) await s.put(id, t)
    const masters = cluster.all.map((n) => nodeStats(n.port))
    const before = await Promise.all(masters.map((m) => m.read()))
    const read = await s.getMany([...ids, newId()])
    const after = await Promise.all(masters.map((m) => m.read()))
    expect(read.size).toBe(200)
    for (const [id, t] of tokens) expect(read.get(id)).toEqual(t)
    for (const [i, was] of before.entries()) {
      const now = after[i] ?? was
      // Each master was asked for its share of the keys (about a third each)...
      expect(now.hgetall - was.hgetall).toBeGreaterThan(30)
      // ...in one burst: the server read it at once, not once per key. Besides our own INFO, a
      // background slot-map refresh of the store's clients may land in between.
      expect(now.reads - was.reads - 1).toBeGreaterThanOrEqual(1)
      expect(now.reads - was.reads - 1).toBeLessThanOrEqual(3)
    }
  })

  it('reads the others when one master does not answer; its ids are unknown (not absent), then read one by one', async () => {
    const prefix = uniquePrefix()
    const s = redisStore({
      endpoints: { mode: 'cluster', nodes: cluster.nodes, tls: false },
      describe: 'cluster',
      keyPrefix: prefix,
      commandTimeoutMs: 300,
    })
    await s.connect()
    const ids = Array.from({ length: 60 }, newId)
    const tokens = new Map(ids.map((id) => [id, makeToken()]))
    for (const [id, t] of tokens) await s.put(id, t)
    const slotOf = (id: string) => calculateSlot(credentialKey(prefix, 'token', id))
    const silent = await cluster.masterOf(slotOf(ids[0] ?? ''))
    const onSilent = new Set<string>()
    for (const id of ids) if ((await cluster.masterOf(slotOf(id))).port === silent.port) onSilent.add(id)

    // The master holds every client's commands (the Cluster bus goes on, so nobody fails over),
    // long past the store's command timeout; it cannot be lifted early, so the test waits it out.
    const pauseMs = 1500
    await pauseNode(silent.port, pauseMs)
    const paused = Date.now()
    const read = await s.getMany(ids)
    expect(Date.now() - paused).toBeLessThan(pauseMs)
    expect([...read.unknown].sort()).toEqual([...onSilent].sort())
    expect([...read.keys()]).toEqual(ids.filter((id) => !onSilent.has(id)))
    for (const [id, t] of read) expect(t).toEqual(tokens.get(id))
    await sleep(Math.max(0, pauseMs - (Date.now() - paused)) + 100)
    for (const id of onSilent) expect(await s.get(id)).toEqual(tokens.get(id))
  })
})

describe('redis store on a cluster whose master dies', () => {
  // A cluster of its own, with a replica per master to take over; the one above has none.
  let withReplicas: RedisCluster
  beforeAll(async () => {
    withReplicas = await startCluster(1)
  }, 60_000)
  afterAll(async () => {
    await withReplicas?.stop()
  })

  it('goes down when a command meets the dead master, and ok again by itself once its replica serves the slot', async () => {
    const log = captureLog()
    const s = redisStore({
      endpoints: { mode: 'cluster', nodes: withReplicas.nodes, tls: false },
      describe: 'cluster',
      log,
    })
    const states: string[] = []
    s.onState((state) => states.push(state))
    await s.connect(5000)
    const id = newId()
    expect(await s.put(id, makeToken())).toBe(true)
    // The connection object stays ready: only the commands routed to the dead master's slots tell.
    await (await withReplicas.masterOf(calculateSlot(credentialKey('', 'token', id)))).kill()
    let failed: unknown
    for (const deadline = Date.now() + 10_000; !failed && Date.now() < deadline; ) {
      failed = await s.put(id, makeToken()).then(
        () => undefined,
        (err: unknown) => err,
      )
    }
    expect(failed).toBeInstanceOf(Error)
    expect(s.status().state).toBe('down')
    expect(states).toEqual(['ok', 'down'])
    const down = log.lines.filter((l) => l.msg === 'redis store down; serving from memory, reconnecting')
    expect(down).toHaveLength(1)
    expect(down[0]?.obj).toMatchObject({
      redis: 'cluster',
      err: expect.stringContaining((failed as Error).message),
    })

    // No caller command needed: the store checks the failed slot until it is served again.
    await eventually(() => expect(s.status().state).toBe('ok'), 20_000)
    expect(states).toEqual(['ok', 'down', 'ok'])
    const later = makeToken()
    expect(await s.put(id, later)).toBe(true)
    expect(await s.get(id)).toEqual(later)
  }, 40_000)
})
