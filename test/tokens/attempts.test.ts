import { describe, expect, it } from 'vitest'
import { MintFailed } from '../../src/core/failure.js'
import { worstMintMs } from '../../src/tokens/attempts.js'
import { errors, SECOND, setup, watch } from './harness.js'

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

describe('worstMintMs', () => {
  it('allows a lock holder every request of a mint, the other secrets refusals included', () => {
    // One secret: 3 attempts timing out, 2 inline waits, slack.
    expect(worstMintMs(10_000, 1)).toBe(3 * 10_000 + 2 * 5_000 + 2_000)
    // Three secrets: two refusals hand over without counting, so up to 5 requests.
    expect(worstMintMs(10_000, 3)).toBe(5 * 10_000 + 2 * 5_000 + 2_000)
  })
})
