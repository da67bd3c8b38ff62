import { describe, expect, it } from 'vitest'
import { MintFailed } from '../../src/core/failure.js'
import { errors, SECOND, setup, withHeldToken } from './harness.js'

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
    const { manager, upstream, clock, settled, failure } = await withHeldToken(20 * SECOND, {
      random: () => 0,
    })
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
