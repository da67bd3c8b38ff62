// The audit lines the token manager writes: `token.minted` with the reason taken from the code path
// that started the mint, and `token.refresh_requested` saying whether a mint followed.
import { describe, expect, it } from 'vitest'
import type { Logger } from '../../src/core/logger.js'
import { fingerprint } from '../../src/core/token.js'
import { captureLog } from '../helpers/capture-log.js'
import { credential, errors, SECOND, setup, watch, withHeldToken } from './harness.js'

function auditLog() {
  const log = captureLog()
  const logger: Logger = { ...log, trace() {} }
  const events = (name: string) =>
    log.lines.filter((l) => (l.obj as { event?: string } | undefined)?.event === name).map((l) => l.obj)
  return {
    logger,
    lines: log.lines,
    minted: () => events('token.minted'),
    refreshes: () => events('token.refresh_requested'),
  }
}

describe('token.minted', () => {
  it('warm-up: one line per credential, with the fingerprint and the secret index, never the token', async () => {
    const audit = auditLog()
    const t = setup({ credentials: ['ims', 'other'], log: audit.logger })
    await t.started()
    expect(audit.minted()).toEqual([
      {
        event: 'token.minted',
        credential: 'ims',
        reason: 'warm-up',
        token: fingerprint('ims-1'),
        secret: 0,
        expiresIn: 3600,
        attempt: 0,
      },
      {
        event: 'token.minted',
        credential: 'other',
        reason: 'warm-up',
        token: fingerprint('other-1'),
        secret: 0,
        expiresIn: 3600,
        attempt: 0,
      },
    ])
    expect(fingerprint('ims-1')).toMatch(/^[0-9a-f]{8}$/)
    expect(JSON.stringify(audit.lines)).not.toMatch(/ims-1|other-1/)
  })

  it('refresh: the background refresh', async () => {
    const audit = auditLog()
    const { manager, clock } = await withHeldToken(0, { log: audit.logger })
    await clock.advanceTo(manager.status('ims').nextRefreshAt!)
    expect(audit.minted().map((l) => (l as { reason: string }).reason)).toEqual(['warm-up', 'refresh'])
  })

  it('min_ttl: a caller whose min_ttl the held token cannot meet', async () => {
    const audit = auditLog()
    const { manager, settled } = await withHeldToken(20 * SECOND, { log: audit.logger })
    expect((await settled(manager.get('ims', 3595))).accessToken).toBe('ims-2')
    expect(audit.minted().at(-1)).toMatchObject({ reason: 'min_ttl', token: fingerprint('ims-2') })
  })

  it('forced and rejected_token: a caller refresh without and with the token upstream refused', async () => {
    const audit = auditLog()
    const { manager, settled, clock } = await withHeldToken(20 * SECOND, { log: audit.logger })
    await settled(manager.refresh('ims', undefined, 'ops'))
    expect(audit.minted().at(-1)).toMatchObject({ reason: 'forced', token: fingerprint('ims-2') })
    await clock.advance(20 * SECOND)
    await settled(manager.refresh('ims', 'ims-2', 'ops'))
    expect(audit.minted().at(-1)).toMatchObject({ reason: 'rejected_token', token: fingerprint('ims-3') })
  })

  it('reload: a credential whose settings changed', async () => {
    const audit = auditLog()
    const { manager, settled } = await withHeldToken(20 * SECOND, { log: audit.logger })
    await settled(manager.reconfigure([credential('ims', 'ims-rotated')]))
    expect(audit.minted().at(-1)).toMatchObject({ reason: 'reload', token: fingerprint('ims-rotated-1') })
  })

  it('a caller joining a background refresh: one mint, one line, with the reason of the run that minted', async () => {
    const audit = auditLog()
    const { manager, clock, upstream } = await withHeldToken(0, { random: () => 0, log: audit.logger })
    const held = upstream('ims').hold()
    await clock.advanceTo(manager.status('ims').nextRefreshAt!)
    const joined = watch(manager.refresh('ims', 'ims-1', 'ops'))
    const needy = watch(manager.get('ims', 3595))
    held.grant()
    await clock.flush()
    expect(joined.value?.accessToken).toBe('ims-2')
    expect(needy.value?.accessToken).toBe('ims-2')
    expect(audit.minted().map((l) => (l as { reason: string }).reason)).toEqual(['warm-up', 'refresh'])
    expect(audit.refreshes()).toEqual([
      { event: 'token.refresh_requested', client: 'ops', credential: 'ims', minted: true, ok: true },
    ])
  })

  it('reads write no line at all', async () => {
    const audit = auditLog()
    const { manager, settled } = await withHeldToken(20 * SECOND, { log: audit.logger })
    const before = audit.lines.length
    for (let i = 0; i < 100; i++) {
      expect(manager.peek('ims')?.accessToken).toBe('ims-1')
      expect((await settled(manager.get('ims', 60))).accessToken).toBe('ims-1')
    }
    expect(audit.lines.length).toBe(before)
  })
})

describe('token.refresh_requested', () => {
  it('says whether a mint followed: no mint when debounced or when the rejected token is stale', async () => {
    const audit = auditLog()
    const { manager, settled, clock } = await withHeldToken(0, { log: audit.logger })
    await settled(manager.refresh('ims', undefined, 'ops'))
    await settled(manager.refresh('ims', 'an-old-token', 'reader'))
    await clock.advance(20 * SECOND)
    await settled(manager.refresh('ims', undefined, 'ops'))
    expect(audit.refreshes()).toEqual([
      { event: 'token.refresh_requested', client: 'ops', credential: 'ims', minted: false, ok: true },
      { event: 'token.refresh_requested', client: 'reader', credential: 'ims', minted: false, ok: true },
      { event: 'token.refresh_requested', client: 'ops', credential: 'ims', minted: true, ok: true },
    ])
    expect(JSON.stringify(audit.lines)).not.toContain('an-old-token')
  })

  it('a refresh whose mint fails: no mint, not ok', async () => {
    const audit = auditLog()
    const { manager, failure, upstream } = await withHeldToken(20 * SECOND, { log: audit.logger })
    upstream('ims').failWith(errors.rejected)
    await failure(manager.refresh('ims', 'ims-1', 'ops'))
    expect(audit.refreshes()).toEqual([
      { event: 'token.refresh_requested', client: 'ops', credential: 'ims', minted: false, ok: false },
    ])
    expect(audit.minted()).toHaveLength(1)
  })
})
