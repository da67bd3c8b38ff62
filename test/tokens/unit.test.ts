import { describe, expect, it } from 'vitest'
import { TooManyForcedMints } from '../../src/core/failure.js'
import { EPOCH } from '../helpers/manual-clock.js'
import { MINUTE, SECOND, seeded, setup, watch, withHeldToken } from './harness.js'

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

  it('with random() = 0 refreshes exactly when 20 % of the lifetime is left, no caller needed', async () => {
    const { manager, upstream, clock, started } = setup({ random: () => 0, lifetimeS: 3600 })
    await started()
    const first = manager.status('ims')
    expect(first.expiresAt).toBe(EPOCH + L)
    expect(first.nextRefreshAt).toBe(EPOCH + L - 0.2 * L)

    await clock.advanceTo(EPOCH + 0.8 * L - 1)
    expect(upstream('ims').calls).toBe(1)
    expect(manager.peek('ims')?.accessToken).toBe('ims-1')

    await clock.advance(1)
    expect(upstream('ims').calls).toBe(2)
    expect(upstream('ims').callTimes[1]).toBe(EPOCH + 0.8 * L)
    expect(manager.peek('ims')?.accessToken).toBe('ims-2')
    // The next cycle is armed from the new token.
    expect(manager.status('ims').nextRefreshAt).toBe(EPOCH + 0.8 * L + 0.8 * L)
  })

  it('with random() close to 1 pulls the refresh forward by at most 2 % of the lifetime', async () => {
    const { manager, upstream, clock, started } = setup({ random: () => 0.999, lifetimeS: 3600 })
    await started()
    const { expiresAt, nextRefreshAt } = manager.status('ims')
    const marginStart = expiresAt! - 0.2 * L
    expect(nextRefreshAt).toBeLessThan(marginStart)
    expect(nextRefreshAt).toBeGreaterThanOrEqual(marginStart - 0.02 * L)
    expect(nextRefreshAt).toBe(marginStart - Math.floor(0.999 * 0.02 * L))

    await clock.advanceTo(nextRefreshAt! - 1)
    expect(upstream('ims').calls).toBe(1)
    await clock.advance(1)
    expect(upstream('ims').calls).toBe(2)
  })

  it('caps the jitter at 5 minutes for long-lived tokens', async () => {
    const { manager, clock, upstream, started } = setup({ random: () => 0.999, lifetimeS: 86_399 })
    await started()
    const lifetime = 86_399 * SECOND
    const { expiresAt, nextRefreshAt } = manager.status('ims')
    const marginStart = expiresAt! - 0.2 * lifetime
    expect(0.02 * lifetime).toBeGreaterThan(5 * MINUTE)
    expect(nextRefreshAt).toBeGreaterThanOrEqual(marginStart - 5 * MINUTE)
    expect(nextRefreshAt).toBe(marginStart - Math.floor(0.999 * 5 * MINUTE))

    await clock.advanceTo(nextRefreshAt! - 1)
    expect(upstream('ims').calls).toBe(1)
    await clock.advance(1)
    expect(upstream('ims').calls).toBe(2)
  })

  it('spreads the refresh moments of many credentials inside the jitter window', async () => {
    const ids = Array.from({ length: 20 }, (_, i) => `c${i}`)
    const { manager, started } = setup({ credentials: ids, random: seeded(42), lifetimeS: 7200 })
    await started()
    const lifetime = 7200 * SECOND
    const moments = new Set<number>()
    for (const id of ids) {
      const { expiresAt, nextRefreshAt } = manager.status(id)
      const marginStart = expiresAt! - 0.2 * lifetime
      expect(nextRefreshAt).toBeLessThanOrEqual(marginStart)
      expect(nextRefreshAt).toBeGreaterThanOrEqual(marginStart - 0.02 * lifetime)
      moments.add(nextRefreshAt!)
    }
    expect(moments.size).toBeGreaterThan(15)
  })

  it('keeps refreshing cycle after cycle, one mint per cycle', async () => {
    const { manager, upstream, clock, started } = setup({ random: () => 0, lifetimeS: 3600 })
    await started()
    await clock.advance(10 * L)
    // One mint every 0.8 L: at 0 and then 12 more within 10 L.
    expect(upstream('ims').calls).toBe(1 + Math.floor(10 / 0.8))
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
