import { describe, expect, it } from 'vitest'
import { TooManyForcedMints } from '../../src/core/failure.js'
import { spreadPoint } from '../../src/core/schedule.js'
import { lifetimeMs, type Token } from '../../src/core/token.js'
import { EPOCH } from '../helpers/manual-clock.js'
import { MINUTE, SECOND, setup, watch, withHeldToken } from './harness.js'

describe('single-flight', () => {
  it('100 concurrent get(big min_ttl) and refresh() share one pending mint and get the same token', async () => {
    const { manager, upstream, clock } = await withHeldToken()
    const held = upstream('ims').hold()

    const calls = [
      ...Array.from({ length: 50 }, () => watch(manager.get('ims', 3595))),
      ...Array.from({ length: 50 }, () => watch(manager.refresh('ims'))),
    ]
    await clock.flush()
    expect(upstream('ims').calls).toBe(2)
    expect(calls.some((c) => c.settled)).toBe(false)

    held.grant()
    await clock.flush()
    expect(upstream('ims').calls).toBe(2)
    for (const c of calls) {
      expect(c.error).toBeUndefined()
      expect(c.value?.accessToken).toBe('ims-2')
    }
  })

  it('callers arriving during warm-up join the warm-up mint', async () => {
    const { manager, upstream, clock } = setup()
    const held = upstream('ims').hold()
    void manager.start()
    const calls = Array.from({ length: 100 }, (_, i) =>
      watch(i % 2 ? manager.get('ims') : manager.get('ims', 600)),
    )
    await clock.flush()
    held.grant()
    await clock.flush()
    expect(upstream('ims').calls).toBe(1)
    for (const c of calls) expect(c.value?.accessToken).toBe('ims-1')
  })

  it('a background refresh and callers share one mint', async () => {
    const { manager, upstream, clock } = await withHeldToken(0, { random: () => 0 })
    const held = upstream('ims').hold()
    await clock.advanceTo(manager.status('ims').nextRefreshAt!)
    expect(upstream('ims').calls).toBe(2)
    const calls = Array.from({ length: 100 }, () => watch(manager.refresh('ims')))
    held.grant()
    await clock.flush()
    expect(upstream('ims').calls).toBe(2)
    for (const c of calls) expect(c.value?.accessToken).toBe('ims-2')
  })
})

describe('background refresh', () => {
  const L = 3600 * SECOND
  /** The latest a token is due: when 20 % of its lifetime is left. */
  const marginOf = (t: Token) => t.expiresAt - 0.2 * lifetimeMs(t)
  /** The credential's place in the spread, before the margin: up to half the margin window. */
  const spreadOf = (id: string, t: Token) => Math.floor(spreadPoint(id, t) * 0.5 * 0.2 * lifetimeMs(t))

  it("with random() = 0 refreshes at the credential's place in the spread, no caller needed", async () => {
    const { manager, upstream, clock, started } = setup({ random: () => 0, lifetimeS: 3600 })
    await started()
    const first = manager.peek('ims')!
    const due = marginOf(first) - spreadOf('ims', first)
    expect(first.expiresAt).toBe(EPOCH + L)
    expect(manager.status('ims').nextRefreshAt).toBe(due)
    expect(due).toBeGreaterThanOrEqual(EPOCH + 0.7 * L)
    expect(due).toBeLessThanOrEqual(EPOCH + 0.8 * L)

    await clock.advanceTo(due - 1)
    expect(upstream('ims').calls).toBe(1)
    expect(manager.peek('ims')?.accessToken).toBe('ims-1')

    await clock.advance(1)
    expect(upstream('ims').calls).toBe(2)
    expect(upstream('ims').callTimes[1]).toBe(due)
    const second = manager.peek('ims')!
    expect(second.accessToken).toBe('ims-2')
    // The next cycle is armed from the new token, at its own place in the spread.
    expect(manager.status('ims').nextRefreshAt).toBe(marginOf(second) - spreadOf('ims', second))
  })

  it('with random() close to 1 pulls the refresh forward by at most 2 % of the lifetime more', async () => {
    const { manager, upstream, clock, started } = setup({ random: () => 0.999, lifetimeS: 3600 })
    await started()
    const token = manager.peek('ims')!
    const { nextRefreshAt } = manager.status('ims')
    expect(nextRefreshAt).toBe(marginOf(token) - spreadOf('ims', token) - Math.floor(0.999 * 0.02 * L))

    await clock.advanceTo(nextRefreshAt! - 1)
    expect(upstream('ims').calls).toBe(1)
    await clock.advance(1)
    expect(upstream('ims').calls).toBe(2)
  })

  it('caps the jitter at 5 minutes for long-lived tokens', async () => {
    const { manager, clock, upstream, started } = setup({ random: () => 0.999, lifetimeS: 86_399 })
    await started()
    const lifetime = 86_399 * SECOND
    const token = manager.peek('ims')!
    const { nextRefreshAt } = manager.status('ims')
    expect(0.02 * lifetime).toBeGreaterThan(5 * MINUTE)
    expect(nextRefreshAt).toBe(marginOf(token) - spreadOf('ims', token) - Math.floor(0.999 * 5 * MINUTE))

    await clock.advanceTo(nextRefreshAt! - 1)
    expect(upstream('ims').calls).toBe(1)
    await clock.advance(1)
    expect(upstream('ims').calls).toBe(2)
  })

  it('spreads the refreshes of credentials minted together over the half margin before the margin', async () => {
    const ids = Array.from({ length: 200 }, (_, i) => `c${i}`)
    const { manager, upstream, clock, started } = setup({
      credentials: ids,
      random: () => 0,
      lifetimeS: 7200,
    })
    await started()
    const lifetime = 7200 * SECOND
    const stretchStart = EPOCH + 0.7 * lifetime
    const stretch = 0.1 * lifetime
    // Ten equal slices of the stretch: every one gets some refreshes, none gets a bunch.
    const slices = Array<number>(10).fill(0)
    for (const id of ids) {
      const due = manager.status(id).nextRefreshAt!
      expect(due).toBeGreaterThanOrEqual(stretchStart)
      expect(due).toBeLessThanOrEqual(EPOCH + 0.8 * lifetime)
      const slice = Math.min(9, Math.floor((due - stretchStart) / (stretch / 10)))
      slices[slice] = (slices[slice] ?? 0) + 1
    }
    expect(Math.min(...slices)).toBeGreaterThanOrEqual(8)
    expect(Math.max(...slices)).toBeLessThanOrEqual(35)

    // And the upstream sees them that way: no more than a slice's worth in any tenth of the stretch.
    await clock.advanceTo(stretchStart + stretch / 10)
    const firstSlice = ids.reduce((n, id) => n + upstream(id).calls - 1, 0)
    expect(firstSlice).toBe(slices[0])
  })

  it('with a margin over half the lifetime, spreads over the time before the margin: never due at once', async () => {
    const ids = Array.from({ length: 50 }, (_, i) => `c${i}`)
    const { manager, started } = setup({
      credentials: ids,
      random: () => 0.999,
      refreshMargin: 0.9,
      lifetimeS: 100,
    })
    await started()
    for (const id of ids) {
      const due = manager.status(id).nextRefreshAt!
      // The margin starts at 10 s; the spread and the jitter take at most 5 s and 1 s of it.
      expect(due).toBeGreaterThanOrEqual(EPOCH + 4 * SECOND)
      expect(due).toBeLessThanOrEqual(EPOCH + 10 * SECOND)
    }
  })

  it('places a token at the same point of the spread on every replica, and credentials apart', () => {
    const token = { accessToken: 'a', tokenType: 'bearer', mintedAt: EPOCH, expiresAt: EPOCH + L }
    expect(spreadPoint('ims', token)).toBe(spreadPoint('ims', { ...token, accessToken: 'a' }))
    expect(spreadPoint('ims', token)).not.toBe(spreadPoint('eqp', token))
    expect(spreadPoint('ims', token)).not.toBe(spreadPoint('ims', { ...token, mintedAt: EPOCH + 1 }))
    for (const id of ['a', 'b', 'c', 'ims']) {
      expect(spreadPoint(id, token)).toBeGreaterThanOrEqual(0)
      expect(spreadPoint(id, token)).toBeLessThan(1)
    }
  })

  it('keeps refreshing cycle after cycle, one mint per cycle', async () => {
    const { manager, upstream, clock, started } = setup({ random: () => 0, lifetimeS: 3600 })
    await started()
    await clock.advance(10 * L)
    // One mint per cycle, each when 20 to 30 % of the last token's lifetime was left.
    const times = upstream('ims').callTimes
    for (let i = 1; i < times.length; i++) {
      const gap = times[i]! - times[i - 1]!
      expect(gap).toBeGreaterThanOrEqual(0.7 * L)
      expect(gap).toBeLessThanOrEqual(0.8 * L)
    }
    expect(times.length).toBeGreaterThanOrEqual(1 + Math.floor(10 / 0.8))
    expect(times.length).toBeLessThanOrEqual(1 + Math.floor(10 / 0.7))
    expect(manager.peek('ims')?.accessToken).toBe(`ims-${upstream('ims').calls}`)
  })
})

describe('the forced-mint limit refuses only forced refreshes', () => {
  /** Six forced refreshes in a row: the limit of the window is used up. */
  async function useUpTheLimit(t: Awaited<ReturnType<typeof withHeldToken>>) {
    for (let i = 0; i < 6; i++) {
      await t.clock.advance(SECOND)
      await t.settled(t.manager.refresh('ims', t.manager.peek('ims')!.accessToken))
    }
    expect(t.upstream('ims').calls).toBe(7)
  }

  it('a plain refresh that joined a refused forced run mints on its own instead of getting 429', async () => {
    const t = await withHeldToken(20 * SECOND)
    await useUpTheLimit(t)
    await t.clock.advance(11 * SECOND)
    const forced = watch(t.manager.refresh('ims', t.manager.peek('ims')!.accessToken))
    const plain = watch(t.manager.refresh('ims'))
    await t.clock.flush()
    expect(forced.error).toBeInstanceOf(TooManyForcedMints)
    expect(plain.error).toBeUndefined()
    expect(plain.value?.accessToken).toBe('ims-8')
    expect(t.upstream('ims').calls).toBe(8)
  })

  it('a background refresh that joined a refused forced run still refreshes and stays armed', async () => {
    const t = await withHeldToken(0, { lifetimeS: 60 })
    await useUpTheLimit(t)
    const refreshAt = t.manager.status('ims').nextRefreshAt!
    await t.clock.advanceTo(refreshAt - SECOND)
    // Another replica holds the lock: the forced run waits, and the refresh timer fires meanwhile.
    const other = await t.store.acquire('ims', 5 * SECOND)
    const forced = watch(t.manager.refresh('ims', t.manager.peek('ims')!.accessToken))
    await t.clock.advanceTo(refreshAt + 100)
    expect(t.upstream('ims').calls).toBe(7)
    await other?.release()
    await t.clock.advance(SECOND)
    expect(forced.error).toBeInstanceOf(TooManyForcedMints)
    expect(t.upstream('ims').calls).toBe(8)
    expect(t.manager.peek('ims')?.accessToken).toBe('ims-8')
    expect(t.manager.status('ims').nextRefreshAt).toBeGreaterThan(t.clock.now())
  })
})

describe('a background refresh while the store is unreachable', () => {
  const L = 3600 * SECOND
  /** The store's lock fails as it does while Redis is down; `restore` brings it back. */
  function cutStore(t: ReturnType<typeof setup>) {
    const acquire = t.store.acquire
    t.store.acquire = () => Promise.reject(new Error('Connection is closed.'))
    return () => {
      t.store.acquire = acquire
    }
  }

  it('waits for the store instead of minting without the lock, and mints once when it is back', async () => {
    const t = setup({ random: () => 0, lifetimeS: 3600 })
    await t.started()
    const due = t.manager.status('ims').nextRefreshAt!
    const restore = cutStore(t)
    await t.clock.advanceTo(due + 10 * SECOND)
    expect(t.upstream('ims').calls).toBe(1)
    expect(t.manager.status('ims').state).toBe('ok')

    restore()
    await t.clock.advance(2 * SECOND)
    expect(t.upstream('ims').calls).toBe(2)
    expect(t.manager.peek('ims')?.accessToken).toBe('ims-2')
    expect((await t.store.get('ims'))?.accessToken).toBe('ims-2')
  })

  it('mints without the lock once half the margin is left, when it must', async () => {
    const t = setup({ random: () => 0, lifetimeS: 3600 })
    await t.started()
    cutStore(t)
    // Half of the 20 % margin: 10 % of the lifetime left.
    await t.clock.advanceTo(EPOCH + 0.9 * L - 3 * SECOND)
    expect(t.upstream('ims').calls).toBe(1)
    // It tries the store every 2 s: the first try from then on mints.
    await t.clock.advance(5 * SECOND)
    expect(t.upstream('ims').calls).toBe(2)
    expect(t.upstream('ims').callTimes[1]).toBeGreaterThanOrEqual(EPOCH + 0.9 * L)
    expect(t.manager.peek('ims')?.accessToken).toBe('ims-2')
  })

  it('a caller who needs a new token meanwhile gets one at once, without the lock', async () => {
    const t = setup({ random: () => 0, lifetimeS: 3600 })
    await t.started()
    const due = t.manager.status('ims').nextRefreshAt!
    cutStore(t)
    await t.clock.advanceTo(due + SECOND)
    expect(t.upstream('ims').calls).toBe(1)
    const token = await t.settled(t.manager.get('ims', 0.5 * 3600))
    expect(token.accessToken).toBe('ims-2')
    expect(t.upstream('ims').calls).toBe(2)
  })
})
