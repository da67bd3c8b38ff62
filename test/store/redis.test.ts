import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, inject, it, onTestFinished } from 'vitest'
import { createFleetClock } from '../../src/core/clock.js'
import { type RedisStoreOptions, type RedisTokenStore, redactUrl } from '../../src/store/redis.js'
import { captureLog } from '../helpers/capture-log.js'
import { legacyBrakeKey, signedBrake } from '../helpers/legacy-brake.js'
import { createManualClock, shiftableClock } from '../helpers/manual-clock.js'
import { deleteKeys, redisClient, scanKeys, uniquePrefix } from '../helpers/redis-keys.js'
import { startRedisProxy } from '../helpers/redis-proxy.js'
import { redisStore } from '../helpers/redis-store.js'
import { eventually, makeToken, newId, storeContract } from './contract.js'

const redisUrl = inject('redisUrl')
let admin: Redis

const make = (opts: Partial<RedisStoreOptions> = {}): RedisTokenStore => {
  const keyPrefix = opts.keyPrefix ?? uniquePrefix()
  // Registered before the store's close, so it runs after it.
  onTestFinished(() => deleteKeys(redisUrl, keyPrefix))
  return redisStore({ ...opts, keyPrefix })
}
const proxy = async () => {
  const p = await startRedisProxy(redisUrl)
  onTestFinished(() => p.close())
  return p
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
/** How long `p` takes to reject; fails if it resolves. */
const timeToReject = async (p: Promise<unknown>): Promise<number> => {
  const t0 = Date.now()
  await expect(p).rejects.toBeInstanceOf(Error)
  return Date.now() - t0
}

beforeAll(() => {
  admin = redisClient(redisUrl)
})
afterAll(async () => {
  await admin.quit()
})

storeContract('redis', async () => {
  const s = make()
  await s.connect()
  return s
})
storeContract('redis, encrypted', async () => {
  const s = make({ encryptionKey: randomBytes(32) })
  await s.connect()
  return s
})

// Which arguments of a command name keys or channels; every command the store sends must be listed.
const KEYLESS = new Set(['info', 'ping', 'quit', 'client', 'select', 'script', 'auth', 'hello'])
const touched = ([name = '', ...args]: string[]): string[] => {
  const cmd = name.toLowerCase()
  if (KEYLESS.has(cmd)) return []
  if (cmd === 'evalsha' || cmd === 'eval') return args.slice(2, 2 + Number(args[1]))
  if (cmd === 'mget' || cmd === 'del') return args
  if (['subscribe', 'publish', 'set', 'get', 'hgetall', 'hset', 'pexpireat'].includes(cmd)) {
    return cmd === 'subscribe' ? args : args.slice(0, 1)
  }
  throw new Error(`unexpected command ${cmd}: list it in the test`)
}

describe('redis store: keys', () => {
  it('writes only under its prefix; the token key is a hash expiring with the token', async () => {
    const p = await proxy()
    const prefix = uniquePrefix()
    const s = make({ url: p.url, keyPrefix: prefix })
    await s.connect()
    const id = newId()
    expect(await scanKeys(admin, `*${id}*`)).toEqual([])
    const now = Date.now()
    await s.put(id, makeToken({ mintedAt: now, expiresAt: now + 60_000 }))
    const lock = await s.acquire(id, 5000)
    await s.get(id)
    await s.setBrake(id, { kind: 'unavailable', until: now + 1000 })
    await s.getBrake(id)
    await s.setBrake(id, undefined)
    const expected = [`${prefix}{${id}}:lock`, `${prefix}{${id}}:token`]
    // The whole keyspace: anything named after this (unique) credential is under the prefix.
    expect((await scanKeys(admin, `*${id}*`)).sort()).toEqual(expected)
    expect((await scanKeys(admin, `${prefix}*`)).sort()).toEqual(expected)
    // And every key or channel the store named in any command is under the prefix.
    const names = p.commands.flatMap(touched)
    expect(names.length).toBeGreaterThan(0)
    for (const n of names) expect(n.startsWith(prefix), n).toBe(true)
    expect(names).toContain(`${prefix}tokens`)

    const tokenKey = `${prefix}{${id}}:token`
    expect(await admin.type(tokenKey)).toBe('hash')
    expect((await admin.hkeys(tokenKey)).sort()).toEqual(['g', 'm', 'v'])
    const ttl = await admin.pttl(tokenKey)
    expect(ttl).toBeGreaterThan(58_000)
    expect(ttl).toBeLessThanOrEqual(60_000)
    await lock?.release()
    expect(await admin.exists(`${prefix}{${id}}:lock`)).toBe(0)
  })

  it('fences atomically: concurrent writers on two connections, in either order, the later mint wins', async () => {
    const keyPrefix = uniquePrefix()
    const [a, b] = [make({ keyPrefix }), make({ keyPrefix })]
    await Promise.all([a.connect(), b.connect()])
    for (let i = 0; i < 20; i++) {
      const id = newId()
      const now = Date.now()
      const older = makeToken({ mintedAt: now })
      const newer = makeToken({ mintedAt: now + 1 })
      const [wOlder, wNewer] = i % 2 ? [a, b] : [b, a]
      const puts =
        i % 4 < 2
          ? [wOlder.put(id, older), wNewer.put(id, newer)]
          : [wNewer.put(id, newer), wOlder.put(id, older)]
      await Promise.all(puts)
      expect(await a.get(id)).toEqual(newer)
    }
  })

  it('tells another instance of a new token within 500 ms, publishing only the id', async () => {
    const keyPrefix = uniquePrefix()
    const [writer, reader] = [make({ keyPrefix }), make({ keyPrefix })]
    await Promise.all([writer.connect(), reader.connect()])
    const seen: string[] = []
    reader.onToken((id) => seen.push(id))
    const spy = admin.duplicate()
    const published: string[] = []
    spy.on('message', (_ch: string, msg: string) => published.push(msg))
    await spy.subscribe(`${keyPrefix}tokens`)
    try {
      const id = newId()
      await writer.put(id, makeToken())
      await eventually(() => expect(seen).toEqual([id]), 500)
      await eventually(() => expect(published).toEqual([id]), 500)
    } finally {
      await spy.quit()
    }
  })

  it('lock: SET NX with a unique value and the TTL; another instance cannot take it', async () => {
    const keyPrefix = uniquePrefix()
    const [a, b] = [make({ keyPrefix }), make({ keyPrefix })]
    await Promise.all([a.connect(), b.connect()])
    const id = newId()
    const lock = await a.acquire(id, 3000)
    expect(lock).toBeDefined()
    expect(await admin.get(`${keyPrefix}{${id}}:lock`)).toMatch(/^[0-9a-f-]{36}$/)
    const ttl = await admin.pttl(`${keyPrefix}{${id}}:lock`)
    expect(ttl).toBeGreaterThan(2000)
    expect(ttl).toBeLessThanOrEqual(3000)
    expect(await b.acquire(id, 3000)).toBeUndefined()
    await lock?.release()
    expect(await b.acquire(id, 3000)).toBeDefined()
  })

  it("lock: a release after the TTL does not delete the next holder's lock", async () => {
    const keyPrefix = uniquePrefix()
    const log = captureLog()
    const [a, b] = [make({ keyPrefix, log }), make({ keyPrefix })]
    await Promise.all([a.connect(), b.connect()])
    const id = newId()
    const first = await a.acquire(id, 300)
    // Its lease lapsed (a stall longer than the TTL, say): the lock is gone from under it.
    await admin.del(`${keyPrefix}{${id}}:lock`)
    const second = await b.acquire(id, 5000)
    expect(second).toBeDefined()
    const theirs = await admin.get(`${keyPrefix}{${id}}:lock`)
    // Its next renewal finds the lock someone else's: it neither extends nor takes it.
    await eventually(() =>
      expect(log.lines).toContainEqual({
        level: 'warn',
        obj: { credential: id },
        msg: expect.stringContaining('fleet lock lost'),
      }),
    )
    await first?.release()
    expect(await admin.get(`${keyPrefix}{${id}}:lock`)).toBe(theirs)
    expect(await admin.pttl(`${keyPrefix}{${id}}:lock`)).toBeGreaterThan(4000)
    await second?.release()
  })
})

describe('redis store: many credentials and the earlier key layout', () => {
  it('reads 1000 stored tokens in a few round trips, not one per credential', async () => {
    const keyPrefix = uniquePrefix()
    const writer = make({ keyPrefix })
    await writer.connect()
    const ids = Array.from({ length: 1000 }, newId)
    const tokens = new Map(ids.map((id) => [id, makeToken()]))
    await Promise.all([...tokens].map(([id, t]) => writer.put(id, t)))
    const p = await proxy()
    const reader = make({ url: p.url, keyPrefix })
    await reader.connect()
    const before = p.roundTrips()
    const read = await reader.getMany([...ids, newId()])
    const trips = p.roundTrips() - before
    expect(read.size).toBe(1000)
    for (const [id, t] of tokens) expect(read.get(id)).toEqual(t)
    expect(trips).toBeGreaterThanOrEqual(1)
    expect(trips).toBeLessThanOrEqual(5)
  })

  it('reads a token stored under the earlier layout (prefix + "token:" + id) until a newer one is written', async () => {
    const keyPrefix = uniquePrefix()
    const key = randomBytes(32)
    const s = make({ keyPrefix, encryptionKey: key })
    await s.connect()
    const id = newId()
    // What the earlier release wrote: the same record under the untagged key name (its AAD too).
    const old = makeToken({ mintedAt: Date.now() - 1000 })
    const legacyKey = `${keyPrefix}token:${id}`
    const { createCipher } = await import('../../src/store/crypto.js')
    const sealed = createCipher(key).seal(JSON.stringify(old), legacyKey)
    await admin.hset(legacyKey, 'm', String(old.mintedAt), 'v', sealed)
    await admin.pexpireat(legacyKey, old.expiresAt)
    expect(await s.get(id)).toEqual(old)
    expect((await s.getMany([id])).get(id)).toEqual(old)
    const newer = makeToken()
    expect(await s.put(id, newer)).toBe(true)
    expect(await s.get(id)).toEqual(newer)
  })

  it('obeys a brake stored under the earlier layout (prefix + "brake:" + id); lifting a brake lifts it too', async () => {
    const keyPrefix = uniquePrefix()
    const s = make({ keyPrefix })
    await s.connect()
    const id = newId()
    const until = Date.now() + 30_000
    // What the earlier release wrote without a key: `kind:until`, under the untagged key name.
    await admin.set(legacyBrakeKey(keyPrefix, id), `rejected:${until}`, 'PX', 30_000)
    expect(await s.getBrake(id)).toEqual({ kind: 'rejected', until })
    // A shorter brake of this release does not cut the earlier one short; a longer one wins.
    await s.setBrake(id, { kind: 'unavailable', until: until - 10_000 })
    expect(await s.getBrake(id)).toEqual({ kind: 'rejected', until })
    await s.setBrake(id, { kind: 'unavailable', until: until + 10_000 })
    expect(await s.getBrake(id)).toEqual({ kind: 'unavailable', until: until + 10_000 })
    await s.setBrake(id, undefined)
    expect(await s.getBrake(id)).toBeUndefined()
    expect(await admin.exists(legacyBrakeKey(keyPrefix, id), `${keyPrefix}{${id}}:brake`)).toBe(0)
  })

  it('with a key, obeys an earlier-layout brake only as that release signed it: under its own key name, by a key of the ring', async () => {
    const keyPrefix = uniquePrefix()
    const [current, old, stranger] = [randomBytes(32), randomBytes(32), randomBytes(32)]
    const s = make({ keyPrefix, encryptionKey: current, oldEncryptionKeys: [old] })
    await s.connect()
    const until = Date.now() + 30_000
    const body = `rejected:${until}`
    const signed = (key: Buffer, name: string) => signedBrake(key, name, body)
    const cases: Array<[string, (legacy: string, id: string) => string, boolean]> = [
      ['untagged (anyone with write access to Redis)', () => body, false],
      ['signed by a key outside the ring', (legacy) => signed(stranger, legacy), false],
      [
        "signed for this release's key name, moved",
        (_legacy, id) => signed(current, `${keyPrefix}{${id}}:brake`),
        false,
      ],
      ['signed by the current key', (legacy) => signed(current, legacy), true],
      ['signed by an old key of the ring', (legacy) => signed(old, legacy), true],
    ]
    for (const [what, value, obeyed] of cases) {
      const id = newId()
      const legacy = legacyBrakeKey(keyPrefix, id)
      await admin.set(legacy, value(legacy, id), 'PX', 30_000)
      expect(await s.getBrake(id), what).toEqual(obeyed ? { kind: 'rejected', until } : undefined)
    }
  })
})

describe('redis store: encryption at rest', () => {
  const allValues = async (prefix: string): Promise<string> => {
    const out: unknown[] = []
    for (const key of await scanKeys(admin, `${prefix}*`)) {
      const type = await admin.type(key)
      out.push(key, type === 'hash' ? await admin.hgetall(key) : await admin.get(key))
    }
    return JSON.stringify(out)
  }

  it('obeys the generation fence only as sealed in the value: a forged plain `g` field freezes nothing', async () => {
    const keyPrefix = uniquePrefix()
    const s = make({ keyPrefix, encryptionKey: randomBytes(32) })
    await s.connect()
    const id = newId()
    const now = Date.now()
    const generation = { settings: 'abc', since: now - 1000, startedAt: now - 10 }
    await s.put(id, makeToken({ mintedAt: now - 5, generation }))
    // Write access to Redis without the key: a far-future `g` beside a valid sealed value.
    await admin.hset(`${keyPrefix}{${id}}:token`, 'g', String(9e15))
    const next = makeToken({ mintedAt: now, generation: { ...generation, startedAt: now - 1 } })
    expect(await s.put(id, next)).toBe(true)
    expect((await s.get(id))?.accessToken).toBe(next.accessToken)
    // The sealed fence still holds: a mint begun before the stored settings took effect is refused.
    const newer = { settings: 'def', since: now + 1, startedAt: now + 2 }
    await s.put(id, makeToken({ mintedAt: now + 3, generation: newer }))
    const stale = makeToken({ mintedAt: now + 4, generation: { ...generation, startedAt: now } })
    expect(await s.put(id, stale)).toBe(false)
  })

  it("mid-rotation, replicas with either key current obey each other's brakes; a key outside the ring does not", async () => {
    const keyPrefix = uniquePrefix()
    const [k1, k2, k3] = [randomBytes(32), randomBytes(32), randomBytes(32)]
    const before = make({ keyPrefix, encryptionKey: k1, oldEncryptionKeys: [k2] })
    const after = make({ keyPrefix, encryptionKey: k2, oldEncryptionKeys: [k1] })
    const stranger = make({ keyPrefix, encryptionKey: k3 })
    await Promise.all([before.connect(), after.connect(), stranger.connect()])
    const id = newId()
    await after.setBrake(id, { kind: 'rejected', until: Date.now() + 30_000 })
    expect(await before.getBrake(id)).toMatchObject({ kind: 'rejected' })
    expect(await stranger.getBrake(id)).toBeUndefined()
    await before.setBrake(id, { kind: 'unavailable', until: Date.now() + 30_000 })
    expect(await after.getBrake(id)).toMatchObject({ kind: 'unavailable' })
  })

  it('keeps no plaintext token anywhere in Redis', async () => {
    const keyPrefix = uniquePrefix()
    const s = make({ keyPrefix, encryptionKey: randomBytes(32) })
    await s.connect()
    const ids = [newId(), newId()]
    const tokens = [makeToken(), makeToken({ mageId: `mage-${randomBytes(6).toString('hex')}` })]
    for (const [i, id] of ids.entries()) await s.put(id, tokens[i] ?? makeToken())
    await s.acquire(ids[0] ?? '', 5000)
    const dump = await allValues(keyPrefix)
    expect(dump).toContain('}:token')
    for (const t of tokens) {
      expect(dump).not.toContain(t.accessToken)
      if (t.mageId) expect(dump).not.toContain(t.mageId)
    }
    expect(await s.get(ids[1] ?? '')).toEqual(tokens[1])
    expect(s.status()).toMatchObject({ kind: 'redis', encrypted: true })
  })

  it('finds nothing, quietly, where nothing was ever stored', async () => {
    const log = captureLog()
    const s = make({ keyPrefix: uniquePrefix(), encryptionKey: randomBytes(32), log })
    await s.connect()
    expect(await s.get(newId())).toBeUndefined()
    expect(log.lines.filter((l) => l.level === 'warn')).toEqual([])
  })

  it('treats a tampered value as absent and logs the id and reason once, never the value', async () => {
    const log = captureLog()
    const keyPrefix = uniquePrefix()
    const s = make({ keyPrefix, encryptionKey: randomBytes(32), log })
    await s.connect()
    const id = newId()
    const t = makeToken()
    await s.put(id, t)
    const key = `${keyPrefix}{${id}}:token`
    const sealed = (await admin.hget(key, 'v')) ?? ''
    const raw = Buffer.from(sealed.slice(3), 'base64')
    raw[20] = (raw[20] ?? 0) ^ 0xff
    const tampered = `v1.${raw.toString('base64')}`
    await admin.hset(key, 'v', tampered)
    expect(await s.get(id)).toBeUndefined()
    expect(await s.get(id)).toBeUndefined()
    const warns = log.lines.filter((l) => l.level === 'warn')
    expect(warns).toHaveLength(1)
    expect(warns[0]?.obj).toMatchObject({ credential: id })
    const text = log.text()
    for (const secret of [tampered, sealed, t.accessToken, sealed.slice(3, 30)])
      expect(text).not.toContain(secret)
  })

  it("treats a value copied to another credential's key as absent (the key name is the AAD)", async () => {
    const keyPrefix = uniquePrefix()
    const s = make({ keyPrefix, encryptionKey: randomBytes(32) })
    await s.connect()
    const [a, b] = [newId(), newId()]
    await s.put(a, makeToken())
    const stolen = await admin.hgetall(`${keyPrefix}{${a}}:token`)
    await admin.hset(`${keyPrefix}{${b}}:token`, stolen)
    await admin.pexpire(`${keyPrefix}{${b}}:token`, 60_000)
    expect(await s.get(b)).toBeUndefined()
    expect(await s.get(a)).toBeDefined()
  })

  it('treats a value sealed with another key, or not sealed at all, as absent', async () => {
    const keyPrefix = uniquePrefix()
    const [k1, k2] = [randomBytes(32), randomBytes(32)]
    const writer = make({ keyPrefix, encryptionKey: k1 })
    const otherKey = make({ keyPrefix, encryptionKey: k2 })
    const noKey = make({ keyPrefix })
    await Promise.all([writer.connect(), otherKey.connect(), noKey.connect()])
    const [sealedId, plainId] = [newId(), newId()]
    await writer.put(sealedId, makeToken())
    await noKey.put(plainId, makeToken())
    expect(await otherKey.get(sealedId)).toBeUndefined()
    expect(await noKey.get(sealedId)).toBeUndefined()
    expect(await writer.get(plainId)).toBeUndefined()
    expect(await writer.get(sealedId)).toBeDefined()
  })

  it('treats a bad shape or a fence field that differs from the payload as absent', async () => {
    const keyPrefix = uniquePrefix()
    const s = make({ keyPrefix })
    await s.connect()
    const id = newId()
    const t = makeToken()
    await s.put(id, t)
    const key = `${keyPrefix}{${id}}:token`
    await admin.hset(key, 'm', String(t.mintedAt + 1))
    expect(await s.get(id)).toBeUndefined()
    await admin.hset(key, 'm', String(t.mintedAt), 'v', JSON.stringify({ ...t, expiresAt: 'soon' }))
    expect(await s.get(id)).toBeUndefined()
    await admin.hset(key, 'v', JSON.stringify(t))
    expect(await s.get(id)).toEqual(t)
  })
})

describe('redis store: Redis down', () => {
  it('fails fast, goes down, and resumes (writes and notifications) when Redis is back', async () => {
    const p = await proxy()
    const keyPrefix = uniquePrefix()
    const log = captureLog()
    const s = make({ url: p.url, keyPrefix, log })
    const states: string[] = []
    s.onState((st) => states.push(st))
    const seen: string[] = []
    s.onToken((id) => seen.push(id))
    await s.connect()
    expect(s.status().state).toBe('ok')

    await p.stop()
    const id = newId()
    expect(await timeToReject(s.get(id))).toBeLessThan(2000)
    expect(await timeToReject(s.put(id, makeToken()))).toBeLessThan(2000)
    expect(await timeToReject(s.acquire(id, 1000))).toBeLessThan(2000)
    await eventually(() => expect(s.status().state).toBe('down'))
    expect(states).toEqual(['ok', 'down'])
    await sleep(1000) // several reconnect attempts: still one warn line for the outage
    expect(log.lines.filter((l) => l.level === 'warn')).toHaveLength(1)

    await p.start()
    await eventually(() => expect(s.status().state).toBe('ok'), 6000)
    expect(states).toEqual(['ok', 'down', 'ok'])
    expect(await s.put(id, makeToken())).toBe(true)
    await eventually(() => expect(seen).toContain(id), 1000)
    // The subscription came back too: a write by another replica still reaches this one.
    const other = make({ keyPrefix })
    await other.connect()
    const id2 = newId()
    await other.put(id2, makeToken())
    await eventually(() => expect(seen).toContain(id2), 500)
  })

  it('starts with Redis down without hanging or throwing, logs once without the password, connects later', async () => {
    const p = await proxy()
    await p.stop()
    const log = captureLog()
    const withPassword = new URL(p.url)
    withPassword.password = 'hunter2-secret'
    const s = make({ url: withPassword.toString(), log })
    const t0 = Date.now()
    await s.connect()
    expect(Date.now() - t0).toBeLessThan(2500)
    expect(s.status().state).toBe('down')
    expect(await timeToReject(s.get(newId()))).toBeLessThan(500)
    await sleep(500)
    expect(log.lines.filter((l) => l.level === 'warn')).toHaveLength(1)
    expect(log.text()).not.toContain('hunter2-secret')
    const t1 = Date.now()
    await s.close()
    expect(Date.now() - t1).toBeLessThan(1500)
  })

  it('connects later when Redis comes up after start', async () => {
    const p = await proxy()
    await p.stop()
    const s = make({ url: p.url })
    await s.connect(300)
    expect(s.status().state).toBe('down')
    await p.start()
    await eventually(() => expect(s.status().state).toBe('ok'), 6000)
    expect(await s.put(newId(), makeToken())).toBe(true)
  })

  it('redacts the password of a URL', () => {
    expect(redactUrl('rediss://user:pw-secret@host:6380/2')).toBe('rediss://user:***@host:6380/2')
    expect(redactUrl('redis://host:6379')).toBe('redis://host:6379')
  })
})

describe('redis store: the injected clock', () => {
  it('judges expiry of tokens and brakes by the clock it is given, not by wall time', async () => {
    const clock = createManualClock(Date.now())
    const keyPrefix = uniquePrefix()
    const s = make({ keyPrefix, clock })
    await s.connect()
    const id = newId()
    const token = makeToken({ mintedAt: clock.now(), expiresAt: clock.now() + 60_000 })
    await s.put(id, token)
    await s.setBrake(id, { kind: 'unavailable', until: clock.now() + 30_000 })
    expect(await s.get(id)).toEqual(token)
    expect(await s.getBrake(id)).toMatchObject({ kind: 'unavailable' })

    await clock.advance(30_000)
    expect(await s.getBrake(id)).toBeUndefined()
    expect(await s.get(id)).toEqual(token)
    await clock.advance(30_000)
    // Redis still holds the key (its TTL runs on Redis's own time); the store no longer serves it.
    expect(await admin.exists(`${keyPrefix}{${id}}:token`)).toBe(1)
    expect(await s.get(id)).toBeUndefined()
  })

  it('measures the fleet clock before it says ok again, so what listens for ok reads times on the new offset', async () => {
    const p = await proxy()
    // Real timers, and a reading that this test moves while Redis is away.
    const base = shiftableClock()
    const fleetClock = createFleetClock(base)
    const s = make({ url: p.url, fleetClock })
    await s.connect()
    expect(Math.abs(fleetClock.offsetMs())).toBeLessThan(1000)
    const offsetsAtOk: number[] = []
    s.onState((state) => {
      if (state === 'ok') offsetsAtOk.push(fleetClock.offsetMs())
    })
    await p.stop()
    await eventually(() => expect(s.status().state).toBe('down'))
    base.shift(5 * 60_000)
    await p.start()
    await eventually(() => expect(s.status().state).toBe('ok'), 6000)
    expect(offsetsAtOk).toHaveLength(1)
    expect(Math.abs((offsetsAtOk[0] ?? 0) + 5 * 60_000)).toBeLessThan(1000)
  })

  it('waits for a Redis that is down on that clock too: connect() gives up when it says so', async () => {
    const p = await proxy()
    await p.stop()
    const clock = createManualClock(Date.now())
    const s = make({ url: p.url, clock })
    let settled = false
    const connecting = s.connect(60_000).then(() => {
      settled = true
    })
    await clock.advance(59_999)
    expect(settled).toBe(false)
    await clock.advance(1)
    await connecting
    expect(s.status().state).toBe('down')
  })
})
