import { describe, expect, it } from 'vitest'
import { createOriginLimiter } from '../../src/upstreams/limiter.js'

const gate = () => {
  let open!: () => void
  const opened = new Promise<void>((resolve) => {
    open = resolve
  })
  return { open, opened }
}

describe('origin limiter', () => {
  it('runs at most `limit` tasks per origin, the rest in arrival order; origins are independent', async () => {
    const limiter = createOriginLimiter(2)
    const gates = Array.from({ length: 5 }, gate)
    const started: number[] = []
    const runs = gates.map((g, i) =>
      limiter.run('https://a.example', async () => {
        started.push(i)
        await g.opened
        return i
      }),
    )
    const other = limiter.run('https://b.example', async () => 'b')
    await new Promise((r) => setImmediate(r))
    expect(started).toEqual([0, 1])
    expect(limiter.inFlight('https://a.example')).toBe(2)
    expect(await other).toBe('b')
    gates[1]?.open()
    await runs[1]
    await new Promise((r) => setImmediate(r))
    expect(started).toEqual([0, 1, 2])
    for (const g of gates) g.open()
    expect(await Promise.all(runs)).toEqual([0, 1, 2, 3, 4])
    expect(limiter.inFlight('https://a.example')).toBe(0)
  })

  it('frees the slot when a task fails, and lets a waiter leave when its signal aborts', async () => {
    const limiter = createOriginLimiter(1)
    const g = gate()
    const first = limiter.run('o', async () => {
      await g.opened
      throw new Error('upstream down')
    })
    const abort = new AbortController()
    let ran = false
    const waiting = limiter.run(
      'o',
      async () => {
        ran = true
      },
      abort.signal,
    )
    const third = limiter.run('o', async () => 'third')
    abort.abort(new Error('shutting down'))
    await expect(waiting).rejects.toThrow('shutting down')
    g.open()
    await expect(first).rejects.toThrow('upstream down')
    expect(await third).toBe('third')
    expect(ran).toBe(false)
  })

  it('refuses a limit below one', () => {
    expect(() => createOriginLimiter(0)).toThrow(RangeError)
  })
})
