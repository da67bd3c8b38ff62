import { afterEach, describe, expect, it } from 'vitest'
import { failureBrakeMs } from '../../src/core/backoff.js'
import { MintFailed } from '../../src/core/failure.js'
import { closeAll, errors, MINUTE, SECOND, setup, watch } from './harness.js'

afterEach(closeAll)

/** Starts the broker's credential with a token of `lifetimeS`, then lets `ageMs` go by. */
async function withHeldToken(opts: Parameters<typeof setup>[0] = {}, ageMs = 20 * SECOND) {
  const t = setup(opts)
  await t.started()
  await t.clock.advance(ageMs)
  return t
}

describe('retries inside one mint', () => {
  it('retries transient failures (503, timeout, malformed) and succeeds on the third attempt', async () => {
    const { manager, upstream, clock } = setup({ random: () => 0.999 })
    upstream('ims').thenFail(errors.timeout(), errors.malformed())
    const warming = watch(manager.start())
    await clock.flush()
    expect(upstream('ims').calls).toBe(1)

    // Full jitter, attempt 0: up to 250 ms; random() = 0.999 gives 249 ms.
    await clock.advance(248)
    expect(upstream('ims').calls).toBe(1)
    await clock.advance(1)
    expect(upstream('ims').calls).toBe(2)
    // Attempt 1: up to 500 ms; 499 ms.
    await clock.advance(498)
    expect(upstream('ims').calls).toBe(2)
    await clock.advance(1)
    expect(upstream('ims').calls).toBe(3)

    expect(warming.settled).toBe(true)
    expect(manager.started).toBe(true)
    expect(manager.status('ims')).toMatchObject({ state: 'ok', lastError: undefined })
    expect(manager.peek('ims')?.accessToken).toBe('ims-3')
  })

  it('draws each wait as random() × the exponential cap (full jitter)', async () => {
    const { upstream, clock, manager } = setup({ random: () => 0.5 })
    upstream('ims').failWith(() => errors.unavailable())
    const warming = watch(manager.start())
    await clock.flush()
    await clock.advance(125)
    expect(upstream('ims').callTimes.map((t) => t - upstream('ims').callTimes[0]!)).toEqual([0, 125])
    await clock.advance(250)
    expect(upstream('ims').callTimes.map((t) => t - upstream('ims').callTimes[0]!)).toEqual([0, 125, 375])
    expect(warming.settled).toBe(true)
  })

  it('makes at most 3 attempts per mint, then fails it', async () => {
    const { manager, upstream, clock, failure } = setup({ random: () => 0 })
    upstream('ims').failWith(() => errors.unavailable())
    await clock.flush()
    const err = await failure(manager.get('ims', 60))
    expect(err).toBeInstanceOf(MintFailed)
    expect(err).toMatchObject({ kind: 'unavailable' })
    expect(upstream('ims').calls).toBe(3)
    expect(manager.status('ims')).toMatchObject({
      state: 'failing',
      lastError: { kind: 'unavailable' },
    })
  })

  it('honours a 2 s Retry-After: the next attempt comes 2 s later, not before', async () => {
    const { manager, upstream, clock } = setup({ random: () => 0 })
    upstream('ims').thenFail(errors.unavailable(2 * SECOND))
    const warming = watch(manager.start())
    await clock.flush()
    expect(upstream('ims').calls).toBe(1)
    // Full jitter alone (random() = 0) would have retried at once.
    await clock.advance(2 * SECOND - 1)
    expect(upstream('ims').calls).toBe(1)
    await clock.advance(1)
    expect(upstream('ims').calls).toBe(2)
    expect(warming.settled).toBe(true)
    expect(manager.peek('ims')?.accessToken).toBe('ims-2')
  })

  it('ends the mint on a Retry-After over 5 s and holds every caller off until then', async () => {
    const { manager, upstream, clock, started, failure } = setup({ random: () => 0 })
    upstream('ims').thenFail(errors.unavailable(30 * SECOND))
    await started()
    expect(upstream('ims').calls).toBe(1)
    expect(manager.started).toBe(true)
    expect(manager.status('ims').nextRefreshAt).toBe(clock.now() + 30 * SECOND)

    const first = await failure(manager.get('ims'))
    expect(first).toBeInstanceOf(MintFailed)
    expect(first).toMatchObject({ kind: 'unavailable', retryAfterMs: 30 * SECOND })

    await clock.advance(10 * SECOND)
    for (let i = 0; i < 50; i++) {
      expect(await failure(manager.get('ims', 100))).toMatchObject({
        kind: 'unavailable',
        retryAfterMs: 20 * SECOND,
      })
      expect(await failure(manager.refresh('ims'))).toMatchObject({ kind: 'unavailable' })
    }
    await clock.advance(20 * SECOND - 1)
    expect(upstream('ims').calls).toBe(1)
    // The brake is over: the background timer tries again without any caller.
    await clock.advance(1)
    expect(upstream('ims').calls).toBe(2)
    expect(manager.peek('ims')?.accessToken).toBe('ims-2')
  })
})

describe('a refused secret', () => {
  it('is tried once, then not again for 30 s whatever 1000 callers ask', async () => {
    const { manager, upstream, clock, started, failure, failures } = setup()
    upstream('ims').failWith(errors.rejected)
    await started()
    expect(upstream('ims').calls).toBe(1)
    expect(manager.status('ims').lastError?.kind).toBe('rejected')

    const asks = [
      () => manager.get('ims'),
      () => manager.get('ims', 600),
      () => manager.refresh('ims'),
      () => manager.refresh('ims', 'ims-0'),
    ]
    for (let second = 0; second < 30; second++) {
      const calls = Array.from({ length: second === 0 ? 1000 : 40 }, (_, i) => asks[i % asks.length]!())
      for (const err of await failures(calls)) {
        expect(err).toBeInstanceOf(MintFailed)
        expect(err).toMatchObject({ kind: 'rejected' })
      }
      await clock.advance(second === 29 ? SECOND - 1 : SECOND)
    }
    expect(upstream('ims').calls).toBe(1)

    // 30 s after the refusal the background timer tries once, and is braked again.
    await clock.advance(1)
    expect(upstream('ims').calls).toBe(2)
    for (const ask of asks) expect(await failure(ask())).toMatchObject({ kind: 'rejected' })
    expect(upstream('ims').calls).toBe(2)
    await clock.advance(30 * SECOND)
    expect(upstream('ims').calls).toBe(3)
  })

  it('is never retried within one mint', async () => {
    const { upstream, started } = setup({ random: () => 0 })
    upstream('ims').failWith(errors.rejected)
    await started()
    expect(upstream('ims').calls).toBe(1)
  })

  it('keeps serving the held token while refresh calls are braked for 30 s', async () => {
    const { manager, upstream, clock, settled, failure, failures } = await withHeldToken()
    upstream('ims').failWith(errors.rejected)

    const err = await failure(manager.refresh('ims', 'ims-1'))
    expect(err).toMatchObject({ kind: 'rejected' })
    expect(upstream('ims').calls).toBe(2)

    const refreshes = Array.from({ length: 1000 }, () => manager.refresh('ims', 'ims-1'))
    for (const e of await failures(refreshes)) expect(e).toMatchObject({ kind: 'rejected' })
    expect(await failure(manager.get('ims', 3590))).toMatchObject({ kind: 'rejected' })
    expect((await settled(manager.get('ims'))).accessToken).toBe('ims-1')
    await clock.advance(30 * SECOND - 1)
    expect(await failure(manager.refresh('ims'))).toMatchObject({ kind: 'rejected' })
    expect(upstream('ims').calls).toBe(2)

    // After 30 s the broker tries once more by itself (the secret works again): the held token is
    // replaced, and the credential is no longer failing, without any caller asking.
    upstream('ims').succeed()
    await clock.advance(1)
    expect(upstream('ims').calls).toBe(3)
    expect(manager.status('ims').state).toBe('ok')
    expect((await settled(manager.refresh('ims', 'ims-1'))).accessToken).toBe('ims-3')
    expect(upstream('ims').calls).toBe(3)
  })
})

describe('a failing credential', () => {
  it('never hammers upstream, however often callers ask, over 10 minutes', async () => {
    const { manager, upstream, clock } = setup({ random: () => 0.5 })
    upstream('ims').failWith(() => errors.unavailable())
    void manager.start()

    const durationMs = 10 * MINUTE
    // Mints may start no faster than the brake allows: at 0, then after 1 s, 2 s, 4 s … 60 s, 60 s …
    let mints = 1
    for (let t = failureBrakeMs('unavailable', 1); t <= durationMs; t += failureBrakeMs('unavailable', mints))
      mints++
    const bound = 3 * mints

    let asked = 0
    for (let elapsed = 0; elapsed < durationMs; elapsed += 100) {
      for (const ask of [
        () => manager.get('ims'),
        () => manager.get('ims', 60),
        () => manager.refresh('ims'),
        () => manager.refresh('ims', 'stale'),
      ]) {
        ask().catch(() => {})
        asked++
      }
      await clock.advance(100)
    }

    expect(asked).toBe(24_000)
    expect(bound).toBe(45)
    expect(upstream('ims').calls).toBeLessThanOrEqual(bound)
    // …and the broker keeps trying on its own (the brake is a brake, not a stop).
    expect(upstream('ims').calls).toBeGreaterThanOrEqual(3 * 13)
    const gaps = upstream('ims')
      .callTimes.slice(1)
      .map((t, i) => t - upstream('ims').callTimes[i]!)
    expect(Math.max(...gaps)).toBeLessThanOrEqual(60 * SECOND)
  })

  it('recovers at the first successful attempt after the brake', async () => {
    const { manager, upstream, clock, started } = setup({ random: () => 0 })
    upstream('ims').failWith(() => errors.unavailable())
    await started()
    expect(upstream('ims').calls).toBe(3)
    upstream('ims').succeed()
    await clock.advance(SECOND)
    expect(upstream('ims').calls).toBe(4)
    expect(manager.status('ims')).toMatchObject({ state: 'ok', lastError: undefined })
  })
})

describe('expiry: never an expired token', () => {
  it('serves the held token by default while it meets min(60 s, 10 %), then fails rather than serve less', async () => {
    const { manager, upstream, clock, started, settled, failure } = setup({ random: () => 0 })
    await started()
    upstream('ims').failWith(() => errors.unavailable())
    const expiresAt = manager.status('ims').expiresAt!

    // Background refreshes fail from 80 % of the lifetime on; callers are still served.
    await clock.advanceTo(expiresAt - 60 * SECOND)
    expect(upstream('ims').calls).toBeGreaterThan(1)
    expect(manager.peek('ims')?.accessToken).toBe('ims-1')
    expect((await settled(manager.get('ims'))).accessToken).toBe('ims-1')

    await clock.advance(1)
    expect(manager.peek('ims')).toBeUndefined()
    const err = await failure(manager.get('ims'))
    expect(err).toBeInstanceOf(MintFailed)
    expect(err).toMatchObject({ kind: 'unavailable' })

    // An explicit smaller min_ttl still gets the token while it has that much left…
    expect((await settled(manager.get('ims', 30))).accessToken).toBe('ims-1')
    // …but never once it has expired.
    await clock.advanceTo(expiresAt)
    expect(manager.peek('ims', 0)).toBeUndefined()
    expect(await failure(manager.get('ims', 0))).toBeInstanceOf(MintFailed)
    expect(await failure(manager.get('ims'))).toBeInstanceOf(MintFailed)
    expect(manager.status('ims').state).toBe('failing')
  })

  it('uses 10 % of the lifetime as the default min_ttl for short-lived tokens', async () => {
    const { manager, upstream, clock, started, settled, failure } = setup({ lifetimeS: 300 })
    await started()
    upstream('ims').failWith(() => errors.unavailable())
    const expiresAt = manager.status('ims').expiresAt!
    await clock.advanceTo(expiresAt - 30 * SECOND)
    expect((await settled(manager.get('ims'))).accessToken).toBe('ims-1')
    await clock.advance(1)
    expect(manager.peek('ims')).toBeUndefined()
    expect(await failure(manager.get('ims'))).toBeInstanceOf(MintFailed)
  })

  it('an explicit min_ttl above what is left mints, and a failed mint rejects instead of serving the held token', async () => {
    const { manager, upstream, clock, settled, failure } = await withHeldToken({ random: () => 0 })
    upstream('ims').failWith(() => errors.unavailable())
    const remainingS = (manager.status('ims').expiresAt! - clock.now()) / SECOND

    const err = await failure(manager.get('ims', remainingS + 1))
    expect(err).toBeInstanceOf(MintFailed)
    expect(err).toMatchObject({ kind: 'unavailable' })
    expect(upstream('ims').calls).toBe(1 + 3)
    // The default still serves it: it meets the default min_ttl.
    expect((await settled(manager.get('ims'))).accessToken).toBe('ims-1')
  })
})
