import { describe, expect, it } from 'vitest'
import { failureBrakeMs } from '../../src/core/backoff.js'
import { MintFailed } from '../../src/core/failure.js'
import { errors, MINUTE, SECOND, setup, withHeldToken } from './harness.js'

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
