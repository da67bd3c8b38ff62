import { describe, expect, it } from 'vitest'
import { MintFailed } from '../../src/core/failure.js'
import { imsCredential } from '../helpers/credentials.js'
import { errors, MINUTE, SECOND, setup, watch } from './harness.js'

/** A credential `id` whose secrets, in order, name their fake upstreams. */
const withSecrets = (id: string, ...secrets: string[]) =>
  imsCredential({ id, clientId: `client-${id}`, clientSecrets: secrets })

describe('secret fallback', () => {
  it('moves to the next secret at once on a refusal, and keeps it until the next reload', async () => {
    const { manager, upstream, clock, started, settled } = setup({
      credentials: [withSecrets('a', 'old', 'new')],
    })
    upstream('old').failWith(errors.rejected)
    await started()
    expect(manager.peek('a')?.accessToken).toBe('new-1')
    expect(manager.status('a').secret).toBe(1)
    // The next mint starts with the secret that works: no more refused calls.
    await clock.advance(MINUTE)
    await settled(manager.refresh('a', 'new-1'))
    expect([upstream('old').calls, upstream('new').calls]).toEqual([1, 2])
    // A reload puts the first secret back in use.
    upstream('old').succeed()
    await clock.advance(MINUTE)
    await settled(manager.reconfigure([withSecrets('a', 'old', 'new', 'newest')]))
    expect(manager.status('a').secret).toBe(0)
    expect(manager.peek('a')?.accessToken).toBe('old-2')
  })

  it('tries each secret at most once per mint; all refused is a rejected failure', async () => {
    const { manager, upstream, started, failure } = setup({
      credentials: [withSecrets('a', 's1', 's2', 's3')],
    })
    for (const s of ['s1', 's2', 's3']) upstream(s).failWith(errors.rejected)
    await started()
    const err = await failure(manager.get('a'))
    expect(err).toBeInstanceOf(MintFailed)
    expect((err as MintFailed).kind).toBe('rejected')
    expect([upstream('s1').calls, upstream('s2').calls, upstream('s3').calls]).toEqual([1, 1, 1])
    expect(manager.status('a').secret).toBe(0)
  })

  it('never moves to the next secret on a transient failure (503, timeout, malformed)', async () => {
    const { manager, upstream, started, clock } = setup({
      credentials: [withSecrets('a', 'first', 'second')],
    })
    upstream('first').thenFail(errors.unavailable(), errors.timeout(), errors.malformed())
    const warming = watch(manager.start())
    await clock.flush()
    expect(warming.settled).toBe(true)
    expect(upstream('first').calls).toBe(3)
    expect(upstream('second').calls).toBe(0)
    expect(manager.status('a').state).toBe('failing')
    expect(manager.status('a').secret).toBe(0)
    void started
  })
})

describe('generation fence (in-process)', () => {
  it('a slow mint with the old secret, finishing after the reload mint with the new one, replaces nothing', async () => {
    const { manager, upstream, clock, store, started, settled } = setup({ credentials: ['a'] })
    await started()
    await clock.advance(MINUTE)
    const slow = upstream('a').hold()
    const oldRun = watch(manager.refresh('a', 'a-1'))
    await clock.flush()
    expect(upstream('a').calls).toBe(2)

    await clock.advance(SECOND)
    // The reload mints with the new secret at once, without waiting for the slow mint.
    await settled(
      manager.reconfigure([
        {
          ...imsCredential({ id: 'a', clientId: 'client-a' }),
          clientSecrets: ['a-new'],
        },
      ]),
    )
    expect(manager.peek('a')?.accessToken).toBe('a-new-1')
    expect((await store.get('a'))?.accessToken).toBe('a-new-1')

    await clock.advance(SECOND)
    slow.grant()
    await clock.flush()
    // Its write is fenced; whoever joined the old run gets the newer token from the store.
    expect(oldRun.value?.accessToken).toBe('a-new-1')
    expect(manager.peek('a')?.accessToken).toBe('a-new-1')
    expect((await store.get('a'))?.accessToken).toBe('a-new-1')
    expect(manager.status('a').state).toBe('ok')
  })
})
