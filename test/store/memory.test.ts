import { describe, expect, it } from 'vitest'
import { createMemoryStore } from '../../src/store/memory.js'
import { createManualClock } from '../helpers/manual-clock.js'
import { makeToken, newId, storeContract } from './contract.js'

storeContract('memory', async () => createMemoryStore())

describe('memory store on an injected clock', () => {
  it('expires tokens and locks by the clock, not by wall time', async () => {
    const clock = createManualClock()
    const s = createMemoryStore({ clock })
    const id = newId()
    const t = makeToken({ mintedAt: clock.now(), expiresAt: clock.now() + 1000 })
    await s.put(id, t)
    const lock = await s.acquire(id, 300)
    expect(lock).toBeDefined()
    await clock.advance(999)
    expect(await s.get(id)).toEqual(t)
    // Renewed by the clock's timers while held, however long that is.
    expect(await s.acquire(id, 300)).toBeUndefined()
    await lock?.release()
    expect(await s.acquire(id, 300)).toBeDefined()
    await clock.advance(1)
    expect(await s.get(id)).toBeUndefined()
  })

  it('calls listeners asynchronously, never inside put', async () => {
    const s = createMemoryStore()
    const seen: string[] = []
    s.onToken((id) => seen.push(id))
    const id = newId()
    const done = s.put(id, makeToken())
    expect(seen).toEqual([])
    await done
    await new Promise((r) => setTimeout(r, 0))
    expect(seen).toEqual([id])
  })

  it('is never down and never encrypted', () => {
    expect(createMemoryStore().status()).toEqual({ kind: 'memory', state: 'ok', encrypted: false })
  })
})
