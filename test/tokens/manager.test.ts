import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { MintFailed } from '../../src/core/failure.js'
import { silentLogger } from '../../src/core/logger.js'
import { createSimulator } from '../../src/simulator/server.js'
import { createMemoryStore } from '../../src/store/memory.js'
import { createTokenManager } from '../../src/tokens/manager.js'
import { createDispatcher } from '../../src/upstreams/dispatcher.js'
import { createMint } from '../../src/upstreams/index.js'
import { captureLog } from '../helpers/capture-log.js'
import { CANARY, imsCredential } from '../helpers/credentials.js'
import { EPOCH } from '../helpers/manual-clock.js'
import { credential, errors, MINUTE, SECOND, setup, watch } from './harness.js'

describe('warm-up', () => {
  it('mints every credential exactly once at start', async () => {
    const { manager, upstream, started } = setup({ credentials: ['a', 'b', 'c'] })
    await started()
    expect([upstream('a').calls, upstream('b').calls, upstream('c').calls]).toEqual([1, 1, 1])
    expect(manager.peek('a')?.accessToken).toBe('a-1')
    expect(manager.peek('b')?.accessToken).toBe('b-1')
    expect(manager.peek('c')?.accessToken).toBe('c-1')
    expect(manager.status('a').state).toBe('ok')
  })

  it('is ready only once every credential has been tried, a failing one included', async () => {
    const { manager, upstream, clock } = setup({ credentials: ['ok', 'refused', 'slow'] })
    upstream('refused').failWith(errors.rejected)
    const slow = upstream('slow').hold()

    const warming = watch(manager.start())
    await clock.flush()
    expect(manager.started).toBe(false)
    expect(warming.settled).toBe(false)
    expect(manager.status('ok').state).toBe('ok')
    expect(manager.status('refused').state).toBe('failing')
    expect(manager.status('slow').state).toBe('pending')

    slow.grant()
    await clock.flush()
    expect(warming.settled).toBe(true)
    expect(manager.started).toBe(true)
    expect(manager.status('slow').state).toBe('ok')
  })

  it('waits for a transiently failing credential to use up its retries before turning ready', async () => {
    const { manager, upstream, clock } = setup({ credentials: ['ok', 'flaky'], random: () => 0.5 })
    upstream('flaky').failWith(() => errors.unavailable())
    const warming = watch(manager.start())
    await clock.flush()
    expect(upstream('flaky').calls).toBe(1)
    expect(manager.started).toBe(false)
    // Full-jitter waits with random() = 0.5: 125 ms, then 250 ms.
    await clock.advance(125 + 250)
    expect(upstream('flaky').calls).toBe(3)
    expect(warming.settled).toBe(true)
    expect(manager.started).toBe(true)
  })

  it('marks a credential whose mint failed as failing with its last error, and serves the others', async () => {
    const { manager, upstream, started, settled, failure } = setup({ credentials: ['good', 'bad'] })
    upstream('bad').failWith(errors.rejected)
    await started()

    const bad = manager.status('bad')
    expect(bad.state).toBe('failing')
    expect(bad.expiresAt).toBeUndefined()
    // The upstream's own words; the HTTP edge names the vendor (test/http/credentials.test.ts).
    expect(bad.lastError).toEqual({
      kind: 'rejected',
      message: 'token request rejected (HTTP 401)',
      at: EPOCH,
    })

    expect(manager.status('good')).toMatchObject({ state: 'ok', lastError: undefined })
    expect((await settled(manager.get('good'))).accessToken).toBe('good-1')
    expect(await failure(manager.get('bad'))).toBeInstanceOf(MintFailed)
  })

  it('takes a valid token already in the store instead of minting (a restarted replica)', async () => {
    const { manager, store, upstream, clock, started } = setup()
    const now = clock.now()
    await store.put('ims', {
      accessToken: 'from-store',
      tokenType: 'bearer',
      mintedAt: now,
      expiresAt: now + 3600_000,
    })
    await started()
    expect(upstream('ims').calls).toBe(0)
    expect(manager.peek('ims')?.accessToken).toBe('from-store')
  })
  it('reads on its own a credential the many-credential read left unknown (its part of the store did not answer)', async () => {
    const { manager, store, upstream, clock, started } = setup({ credentials: ['a', 'b'] })
    const now = clock.now()
    for (const id of ['a', 'b']) {
      await store.put(id, {
        accessToken: `${id}-stored`,
        tokenType: 'bearer',
        mintedAt: now,
        expiresAt: now + 60 * MINUTE,
      })
    }
    // As a Redis Cluster answers with the node holding 'b' down: 'b' is unknown, not absent.
    const readMany = store.getMany.bind(store)
    store.getMany = async (ids) => {
      const found = new Map([...(await readMany(ids))].filter(([id]) => id !== 'b'))
      return Object.assign(found, { unknown: new Set(['b']) })
    }
    const readOne = vi.spyOn(store, 'get')
    const lock = vi.spyOn(store, 'acquire')
    await started()
    // A plain read of its own: not taken for absent (which would take the fleet lock to mint).
    expect(readOne.mock.calls).toEqual([['b']])
    expect(lock).not.toHaveBeenCalled()
    expect([upstream('a').calls, upstream('b').calls]).toEqual([0, 0])
    expect(manager.peek('a')?.accessToken).toBe('a-stored')
    expect(manager.peek('b')?.accessToken).toBe('b-stored')
  })
})

describe('a token the store missed', () => {
  it('is written back at once when the store already says ok again by the time the mint has unwound', async () => {
    const { manager, store, started, clock } = setup()
    // The write fails, yet the store reports ok: its outage ended (and its return's resync ran)
    // while this mint was still unwinding.
    vi.spyOn(store, 'put').mockRejectedValueOnce(new Error('Connection is closed.'))
    await started()
    await clock.flush()
    expect(store.status().state).toBe('ok')
    expect(manager.peek('ims')?.accessToken).toBe('ims-1')
    expect((await store.get('ims'))?.accessToken).toBe('ims-1')
  })
})

describe('reconfigure', () => {
  it('warms many added credentials a few at a time, from one read of the store', async () => {
    const { manager, upstream, clock, store, started } = setup({ credentials: ['a'] })
    await started()
    const ids = Array.from({ length: 40 }, (_, i) => `n${i}`)
    const held = ids.map((id) => upstream(id).hold())
    let reads = 0
    const getMany = store.getMany.bind(store)
    store.getMany = (list) => {
      reads++
      return getMany(list)
    }
    const applying = watch(manager.reconfigure([credential('a'), ...ids.map((id) => credential(id))]))
    await clock.flush()
    expect(reads).toBe(1)
    // Never more than 8 upstream calls pending at once, until all 40 have been answered.
    const answered = new Set<string>()
    for (let round = 0; answered.size < ids.length && round < ids.length; round++) {
      const pending = ids.filter((id) => upstream(id).calls > 0 && !answered.has(id))
      expect(pending.length).toBeGreaterThan(0)
      expect(pending.length).toBeLessThanOrEqual(8)
      for (const id of pending) {
        held[ids.indexOf(id)]?.grant()
        answered.add(id)
      }
      await clock.flush()
    }
    expect(applying.settled).toBe(true)
    for (const id of ids) expect(upstream(id).calls).toBe(1)
  })

  it('mints with a changed secret at once, serving the old token until the new one arrives', async () => {
    const { manager, upstream, clock, started, settled } = setup({ credentials: ['a'] })
    await started()
    await clock.advance(MINUTE)
    const rotated = upstream('a-rotated').hold()

    const applying = watch(manager.reconfigure([credential('a', 'a-rotated')]))
    await clock.flush()
    expect(upstream('a-rotated').calls).toBe(1)
    expect(upstream('a').calls).toBe(1)
    expect((await settled(manager.get('a'))).accessToken).toBe('a-1')
    expect(applying.settled).toBe(false)

    rotated.grant()
    await clock.flush()
    expect(applying.settled).toBe(true)
    expect(manager.peek('a')?.accessToken).toBe('a-rotated-1')
  })

  it('mints with the new secret even when a mint with the old one was in flight', async () => {
    const { manager, upstream, clock, started } = setup({ credentials: ['a'] })
    await started()
    await clock.advance(MINUTE)
    const old = upstream('a').hold()
    void manager.refresh('a', 'a-1').catch(() => {})
    await clock.flush()
    expect(upstream('a').calls).toBe(2)

    const rotated = upstream('a-rotated').hold()
    const applying = watch(manager.reconfigure([credential('a', 'a-rotated')]))
    old.grant()
    await clock.flush()
    expect(manager.peek('a')?.accessToken).toBe('a-2')
    // A token from the old secret is not what the new settings asked for: the new secret is used.
    expect(upstream('a-rotated').calls).toBe(1)
    await clock.advance(SECOND)
    rotated.grant()
    await clock.flush()
    expect(applying.settled).toBe(true)
    expect(manager.peek('a')?.accessToken).toBe('a-rotated-1')
  })

  it('tries the new secret even when the in-flight mint with the old one is refused', async () => {
    const { manager, upstream, clock, started, settled } = setup({ credentials: ['a'] })
    await started()
    await clock.advance(MINUTE)
    const old = upstream('a').hold()
    void manager.refresh('a', 'a-1').catch(() => {})
    await clock.flush()

    const applying = manager.reconfigure([credential('a', 'a-rotated')])
    // The old secret was revoked: its mint fails and sets the 30 s brake, which must not stop the new one.
    old.fail(errors.rejected())
    await settled(applying)
    expect(upstream('a-rotated').calls).toBe(1)
    expect(manager.peek('a')?.accessToken).toBe('a-rotated-1')
    expect(manager.status('a').state).toBe('ok')
  })

  it('tries a new secret at once even while the old one is braked as refused', async () => {
    const { manager, upstream, started, settled } = setup({ credentials: ['a'] })
    upstream('a').failWith(errors.rejected)
    await started()
    await settled(manager.reconfigure([credential('a', 'a-fixed')]))
    expect(upstream('a-fixed').calls).toBe(1)
    expect(manager.status('a').state).toBe('ok')
    expect(manager.peek('a')?.accessToken).toBe('a-fixed-1')
  })

  it('drops a removed credential, warms an added one, and leaves an unchanged one alone', async () => {
    const { manager, upstream, clock, started, settled } = setup({ credentials: ['keep', 'gone'] })
    await started()
    await settled(manager.reconfigure([credential('keep'), credential('new')]))

    expect(manager.has('gone')).toBe(false)
    // One refresh timer per credential still configured; the removed one's is cancelled.
    expect(clock.pending()).toBe(2)
    expect([...manager.ids()].sort()).toEqual(['keep', 'new'])
    expect(() => manager.status('gone')).toThrow()
    expect(upstream('keep').calls).toBe(1)
    expect(upstream('new').calls).toBe(1)
    expect(manager.peek('new')?.accessToken).toBe('new-1')

    // The removed credential's refresh timer is gone with it.
    await clock.advance(2 * 3600 * SECOND)
    expect(upstream('gone').calls).toBe(1)
  })
})

describe('close', () => {
  it('stops the refresh timers: no mint however far the clock moves', async () => {
    const { manager, upstream, clock, started } = setup({ credentials: ['a', 'b'] })
    await started()
    expect(clock.pending()).toBe(2)
    await manager.close()
    expect(clock.pending()).toBe(0)
    expect(manager.status('a').nextRefreshAt).toBeUndefined()
    await clock.advance(48 * 3600 * SECOND)
    expect(upstream('a').calls).toBe(1)
    expect(upstream('b').calls).toBe(1)
    expect(clock.pending()).toBe(0)
  })

  it("does not wait for another replica's lock: close() settles at once and the waiting caller gets 503", async () => {
    const { manager, store, clock, started, upstream } = setup({ credentials: ['a'] })
    await started()
    await clock.advance(20 * SECOND)
    // Another replica holds the lock and keeps it alive: the caller waits for it.
    const other = await store.acquire('a', 5 * SECOND)
    onTestFinished(() => other?.release())
    const waiting = watch(manager.refresh('a', 'a-1'))
    await clock.advance(SECOND)
    expect(waiting.settled).toBe(false)

    const closing = watch(manager.close())
    await clock.flush()
    expect(closing.settled).toBe(true)
    expect(waiting.error).toBeInstanceOf(MintFailed)
    expect(upstream('a').calls).toBe(1)
  })

  it('aborts an in-flight mint and arms nothing after it fails', async () => {
    const { manager, upstream, clock, started } = setup()
    await started()
    await clock.advance(20 * SECOND)
    upstream('ims').hold()
    const refreshing = watch(manager.refresh('ims'))
    await clock.flush()
    expect(upstream('ims').calls).toBe(2)

    await manager.close()
    await clock.flush()
    expect(refreshing.error).toBeInstanceOf(MintFailed)
    await clock.advance(48 * 3600 * SECOND)
    expect(upstream('ims').calls).toBe(2)
    expect(clock.pending()).toBe(0)
  })

  it('drain() stops background refreshes at once, while callers are still served', async () => {
    const { manager, upstream, clock, started } = setup({ credentials: ['a'] })
    await started()
    manager.drain()
    expect(clock.pending()).toBe(0)
    await clock.advance(48 * 3600 * SECOND)
    expect(upstream('a').calls).toBe(1)
    // A caller's need still mints while in-flight work finishes.
    const token = await manager.get('a')
    expect(token.accessToken).not.toBe('')
    expect(upstream('a').calls).toBe(2)
    expect(clock.pending()).toBe(0)
  })
})

describe('close and removed credentials', () => {
  it("waits for a removed credential's mint still in flight", async () => {
    const { manager, upstream, clock, started, settled } = setup({ credentials: ['keep', 'gone'] })
    await started()
    await clock.advance(20 * SECOND)
    // A request that does not stop when shutdown aborts it (a connect still under way, say).
    const slow = upstream('gone').hold({ deaf: true })
    const refreshing = watch(manager.refresh('gone'))
    await clock.flush()
    expect(upstream('gone').calls).toBe(2)
    await settled(manager.reconfigure([credential('keep')]))
    expect(manager.has('gone')).toBe(false)

    const closing = watch(manager.close())
    await clock.flush()
    expect(closing.settled).toBe(false)
    slow.grant()
    await clock.flush()
    expect(closing.settled).toBe(true)
    expect(refreshing.settled).toBe(true)
  })
})

describe('close cuts a mint short', () => {
  it('an upstream request aborted by shutdown is no upstream failure: not counted, not logged, not failing', async () => {
    const sim = createSimulator({ secrets: { 'client-abc': CANARY } })
    const url = await sim.listen()
    const dispatcher = createDispatcher()
    onTestFinished(async () => {
      await dispatcher.close()
      await sim.close()
    })
    sim.behave('client-abc', { mode: 'hang' })
    const outcomes: string[] = []
    const log = captureLog()
    const manager = createTokenManager({
      credentials: [imsCredential({ baseUrl: url })],
      store: createMemoryStore(),
      mintFor: (c) => createMint(c, { dispatcher, timeoutMs: 30_000 }),
      log: { ...silentLogger, ...log },
      refreshMargin: 0.2,
      upstreamTimeoutMs: 30_000,
      events: { upstreamAttempt: (_c, outcome) => outcomes.push(outcome) },
    })
    const warming = manager.start()
    await vi.waitFor(() => expect(sim.requests.length).toBe(1))
    await manager.close()
    await warming
    expect(outcomes).toEqual([])
    expect(log.lines.filter((l) => l.level === 'warn')).toEqual([])
    expect(manager.status('adobe-ims').lastError).toBeUndefined()
    expect(manager.status('adobe-ims').state).toBe('pending')
  })
})
