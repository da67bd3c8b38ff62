import { randomBytes } from 'node:crypto'
import { describe, expect, it, onTestFinished } from 'vitest'
import type { TokenStore } from '../../src/core/store.js'
import type { Token } from '../../src/core/token.js'

export const newId = (): string => `cred-${randomBytes(4).toString('hex')}`

export const makeToken = (over: Partial<Token> = {}): Token => {
  const now = Date.now()
  return {
    accessToken: `at-${randomBytes(12).toString('hex')}`,
    tokenType: 'bearer',
    mintedAt: now,
    expiresAt: now + 60_000,
    ...over,
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Waits until `check` passes or `ms` have gone by (then fails with its last error). */
export async function eventually(check: () => void | Promise<void>, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms
  for (;;) {
    try {
      await check()
      return
    } catch (err) {
      if (Date.now() > deadline) throw err
      await sleep(20)
    }
  }
}

/**
 * What every TokenStore promises (src/core/store.ts), run against each implementation in real time.
 * `makeStore` returns a ready store with an empty namespace; the contract closes it.
 */
export function storeContract(name: string, makeStore: () => Promise<TokenStore>): void {
  describe(`TokenStore contract: ${name}`, () => {
    const store = async () => {
      const s = await makeStore()
      onTestFinished(() => s.close())
      return s
    }

    it('reports its kind and an ok state', async () => {
      const s = await store()
      expect(s.status()).toMatchObject({ kind: s.kind, state: 'ok' })
    })

    it('returns undefined for an absent token', async () => {
      const s = await store()
      expect(await s.get(newId())).toBeUndefined()
    })

    it('returns what was put, per id, with and without mageId', async () => {
      const s = await store()
      const [a, b] = [newId(), newId()]
      const ta = makeToken()
      const tb = makeToken({ mageId: 'mage-1', tokenType: 'bearer' })
      expect(await s.put(a, ta)).toBe(true)
      expect(await s.put(b, tb)).toBe(true)
      expect(await s.get(a)).toEqual(ta)
      expect(await s.get(b)).toEqual(tb)
    })

    it('refuses a token minted earlier or at the same time (the fence), accepts a later one', async () => {
      const s = await store()
      const id = newId()
      const now = Date.now()
      const current = makeToken({ mintedAt: now })
      expect(await s.put(id, current)).toBe(true)
      expect(await s.put(id, makeToken({ mintedAt: now - 1 }))).toBe(false)
      expect(await s.put(id, makeToken({ mintedAt: now }))).toBe(false)
      expect(await s.get(id)).toEqual(current)
      const later = makeToken({ mintedAt: now + 1 })
      expect(await s.put(id, later)).toBe(true)
      expect(await s.get(id)).toEqual(later)
    })

    it('forgets a token at its expiry, and an expired token does not fence', async () => {
      const s = await store()
      const id = newId()
      const now = Date.now()
      expect(await s.put(id, makeToken({ mintedAt: now, expiresAt: now + 150 }))).toBe(true)
      await sleep(250)
      expect(await s.get(id)).toBeUndefined()
      const older = makeToken({ mintedAt: now - 1000 })
      expect(await s.put(id, older)).toBe(true)
      expect(await s.get(id)).toEqual(older)
    })

    it('getMany: the tokens of many ids at once, in the order asked, each its own; absent ids left out', async () => {
      const s = await store()
      const ids = Array.from({ length: 150 }, newId)
      // Every third id never stored, every fifth stored and then expired: both absent.
      const stored = ids.filter((_, i) => i % 3 !== 0)
      const tokens = new Map(stored.map((id) => [id, makeToken()]))
      const now = Date.now()
      const expired = stored.filter((_, i) => i % 5 === 0)
      for (const id of expired) tokens.set(id, makeToken({ mintedAt: now, expiresAt: now + 100 }))
      await Promise.all([...tokens].map(([id, t]) => s.put(id, t)))
      await sleep(200)
      const present = stored.filter((id) => !expired.includes(id))

      const read = await s.getMany(ids)
      expect([...read.keys()]).toEqual(present)
      for (const id of present) expect(read.get(id)).toEqual(tokens.get(id))
      expect(read.unknown.size).toBe(0)
      expect([...(await s.getMany([]))]).toEqual([])
      const [one = '', absent = ''] = [present[0], ids[0]]
      expect([...(await s.getMany([absent, one]))]).toEqual([[one, tokens.get(one)]])
    })

    it('getMany: leaves out what get leaves out as unreadable, and still reads the others', async () => {
      const s = await store()
      const [good, bad] = [newId(), newId()]
      const token = makeToken()
      // A line break no header can carry: a store that reads tokens back from outside the process
      // (Redis) holds them to the rules of an upstream answer and finds this one unreadable; the
      // memory store holds the very token it was given.
      const unbelievable = makeToken({ accessToken: 'at-line\nbreak' })
      expect(await s.put(good, token)).toBe(true)
      expect(await s.put(bad, unbelievable)).toBe(true)
      const expected = s.kind === 'memory' ? unbelievable : undefined
      expect(await s.get(bad)).toEqual(expected)
      const read = await s.getMany([bad, good])
      expect(read.get(bad)).toEqual(expected)
      expect(read.get(good)).toEqual(token)
      expect(read.size).toBe(expected ? 2 : 1)
    })

    it('notifies onToken listeners of a successful put, not of a refused one', async () => {
      const s = await store()
      const seen: string[] = []
      s.onToken((id) => seen.push(id))
      s.onToken(() => {
        throw new Error('a failing listener does not break the others')
      })
      const id = newId()
      const now = Date.now()
      await s.put(id, makeToken({ mintedAt: now }))
      await eventually(() => expect(seen).toEqual([id]))
      expect(await s.put(id, makeToken({ mintedAt: now - 5 }))).toBe(false)
      await sleep(100)
      expect(seen).toEqual([id])
    })

    it('lock: one holder at a time; release frees it', async () => {
      const s = await store()
      const id = newId()
      const lock = await s.acquire(id, 5000)
      expect(lock).toBeDefined()
      expect(await s.acquire(id, 5000)).toBeUndefined()
      expect(await s.acquire(newId(), 5000)).toBeDefined() // locks are per id
      await lock?.release()
      const again = await s.acquire(id, 5000)
      expect(again).toBeDefined()
      await again?.release()
    })

    it('lock: a live holder keeps it past its TTL (renewed); released, it is free at once', async () => {
      const s = await store()
      const id = newId()
      const first = await s.acquire(id, 150)
      expect(first).toBeDefined()
      await sleep(500)
      expect(await s.acquire(id, 5000)).toBeUndefined()
      await first?.release()
      const second = await s.acquire(id, 5000)
      expect(second).toBeDefined()
      await first?.release()
      expect(await s.acquire(id, 5000)).toBeUndefined()
      await second?.release()
    })

    it('countForced: counts per id in a window that starts with its first count, then starts again', async () => {
      const s = await store()
      const [id, other] = [newId(), newId()]
      const windowMs = 300
      const first = await s.countForced(id, windowMs)
      expect(first.count).toBe(1)
      expect(first.resetInMs).toBeGreaterThan(0)
      expect(first.resetInMs).toBeLessThanOrEqual(windowMs)
      await sleep(50)
      const second = await s.countForced(id, windowMs)
      expect(second.count).toBe(2)
      // The same window: it did not start again with the second count.
      expect(second.resetInMs).toBeGreaterThan(0)
      expect(second.resetInMs).toBeLessThan(first.resetInMs)
      expect((await s.countForced(id, windowMs)).count).toBe(3)
      expect((await s.countForced(other, windowMs)).count).toBe(1)

      await sleep(second.resetInMs + 100)
      const next = await s.countForced(id, windowMs)
      expect(next.count).toBe(1)
      expect(next.resetInMs).toBeGreaterThan(second.resetInMs)
      expect(next.resetInMs).toBeLessThanOrEqual(windowMs)
    })

    it('brake: shared until it ends or is lifted, per id', async () => {
      const s = await store()
      const id = newId()
      expect(await s.getBrake(id)).toBeUndefined()
      const brake = { kind: 'rejected' as const, until: Date.now() + 150 }
      await s.setBrake(id, brake)
      expect(await s.getBrake(id)).toEqual(brake)
      expect(await s.getBrake(newId())).toBeUndefined()
      await sleep(250)
      expect(await s.getBrake(id)).toBeUndefined()

      await s.setBrake(id, { kind: 'unavailable', until: Date.now() + 60_000 })
      expect((await s.getBrake(id))?.kind).toBe('unavailable')
      await s.setBrake(id, undefined)
      expect(await s.getBrake(id)).toBeUndefined()
    })
  })
}
