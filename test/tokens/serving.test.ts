import { describe, expect, it } from 'vitest'
import { MinTtlUnreachable } from '../../src/core/failure.js'
import { SECOND, setup, watch, withHeldToken } from './harness.js'

describe('min_ttl', () => {
  it('serves the held token without minting when it has at least min_ttl left', async () => {
    const { manager, upstream, settled } = await withHeldToken(20 * SECOND)
    // 3580 s left.
    expect((await settled(manager.get('ims', 3580))).accessToken).toBe('ims-1')
    expect((await settled(manager.get('ims', 0))).accessToken).toBe('ims-1')
    expect(manager.peek('ims', 3580)?.accessToken).toBe('ims-1')
    expect(manager.peek('ims', 3581)).toBeUndefined()
    expect(upstream('ims').calls).toBe(1)
  })

  it('mints when min_ttl exceeds what is left and the held token is at least 10 s old', async () => {
    const { manager, upstream, settled } = await withHeldToken(10 * SECOND)
    const token = await settled(manager.get('ims', 3591))
    expect(token.accessToken).toBe('ims-2')
    expect(upstream('ims').calls).toBe(2)
    expect(manager.peek('ims')?.accessToken).toBe('ims-2')
  })

  it('answers MinTtlUnreachable without minting when the held token is under 10 s old', async () => {
    const { manager, upstream, failure } = await withHeldToken(10 * SECOND - 1)
    const err = await failure(manager.get('ims', 3595))
    expect(err).toBeInstanceOf(MinTtlUnreachable)
    expect(upstream('ims').calls).toBe(1)
  })

  it('mints once, then answers MinTtlUnreachable, for more than upstream grants (86400 of 86399)', async () => {
    const { manager, upstream, clock, failure } = await withHeldToken(20 * SECOND, { lifetimeS: 86_399 })
    expect(await failure(manager.get('ims', 86_400))).toBeInstanceOf(MinTtlUnreachable)
    expect(upstream('ims').calls).toBe(2)
    expect(manager.peek('ims')?.accessToken).toBe('ims-2')

    // Asking again at once changes nothing upstream.
    for (let i = 0; i < 100; i++)
      expect(await failure(manager.get('ims', 86_400))).toBeInstanceOf(MinTtlUnreachable)
    await clock.advance(5 * SECOND)
    expect(await failure(manager.get('ims', 86_400))).toBeInstanceOf(MinTtlUnreachable)
    expect(upstream('ims').calls).toBe(2)
  })

  it('concurrent callers with an unreachable min_ttl share one mint', async () => {
    const { manager, upstream, clock } = await withHeldToken(20 * SECOND, { lifetimeS: 86_399 })
    const calls = Array.from({ length: 100 }, () => watch(manager.get('ims', 86_400)))
    await clock.flush()
    expect(upstream('ims').calls).toBe(2)
    for (const c of calls) expect(c.error).toBeInstanceOf(MinTtlUnreachable)
  })
})

describe('refresh with a rejected token (compare-and-swap)', () => {
  it('mints a new token when the rejected token is the current one', async () => {
    const { manager, upstream, settled } = await withHeldToken(SECOND)
    const token = await settled(manager.refresh('ims', 'ims-1'))
    expect(token.accessToken).toBe('ims-2')
    expect(upstream('ims').calls).toBe(2)
  })

  it('returns the current token and mints nothing when the rejected token is an older one', async () => {
    const { manager, upstream, settled } = await withHeldToken(SECOND)
    await settled(manager.refresh('ims', 'ims-1'))
    const again = await settled(manager.refresh('ims', 'ims-1'))
    expect(again.accessToken).toBe('ims-2')
    expect((await settled(manager.refresh('ims', 'some-token-from-long-ago'))).accessToken).toBe('ims-2')
    expect(upstream('ims').calls).toBe(2)
  })

  it('300 concurrent refreshes of the same rejected token make exactly one mint and all get its token', async () => {
    const { manager, upstream, clock, settled } = await withHeldToken(SECOND)
    const held = upstream('ims').hold()
    const calls = Array.from({ length: 300 }, () => watch(manager.refresh('ims', 'ims-1')))
    await clock.flush()
    expect(upstream('ims').calls).toBe(2)
    held.grant()
    await clock.flush()
    expect(upstream('ims').calls).toBe(2)
    for (const c of calls) expect(c.value?.accessToken).toBe('ims-2')
    // Latecomers holding the same rejected token get the new one, no mint.
    expect((await settled(manager.refresh('ims', 'ims-1'))).accessToken).toBe('ims-2')
    expect(upstream('ims').calls).toBe(2)
  })
  it('replaces a token stamped by a clock running ahead of ours with one mint, stamped after it', async () => {
    const { manager, upstream, clock, store, started, settled } = setup()
    // Another replica minted this a moment ago, by a reading of the fleet clock 50 ms ahead of ours.
    const ahead = {
      accessToken: 'theirs',
      tokenType: 'bearer',
      mintedAt: clock.now() + 50,
      expiresAt: clock.now() + 3600 * SECOND,
    }
    await store.put('ims', ahead)
    await started()
    expect(upstream('ims').calls).toBe(0)

    const token = await settled(manager.refresh('ims', 'theirs'))
    expect(token.accessToken).toBe('ims-1')
    expect(upstream('ims').calls).toBe(1)
    expect(token.mintedAt).toBe(ahead.mintedAt + 1)
    expect((await store.get('ims'))?.accessToken).toBe('ims-1')
  })
})

describe('refresh debounce', () => {
  it('without a rejected token, returns the token minted within the last 10 s, then mints after', async () => {
    const { manager, upstream, clock, settled } = await withHeldToken(0)
    await clock.advance(10 * SECOND - 1)
    expect((await settled(manager.refresh('ims'))).accessToken).toBe('ims-1')
    expect(upstream('ims').calls).toBe(1)

    await clock.advance(1)
    expect((await settled(manager.refresh('ims'))).accessToken).toBe('ims-2')
    expect(upstream('ims').calls).toBe(2)
    // The new token debounces in turn.
    for (let i = 0; i < 100; i++) expect((await settled(manager.refresh('ims'))).accessToken).toBe('ims-2')
    expect(upstream('ims').calls).toBe(2)
  })
})
