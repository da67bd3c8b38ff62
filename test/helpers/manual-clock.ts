import { type Clock, systemClock } from '../../src/core/clock.js'

/** Where every manual clock starts unless told otherwise. */
export const EPOCH = Date.parse('2026-11-22T10:00:00Z')

interface Timer {
  at: number
  seq: number
  fn: () => void
}

/**
 * A `Clock` that only moves when the test says so. Timers fire in time order (ties in the order
 * they were scheduled), and pending promise chains are drained before and after each one, so code
 * that awaits between timers makes progress exactly as it would on the real clock. No real sleeping.
 */
export interface ManualClock extends Clock {
  /** Moves time forward by `ms`, firing every timer that falls due on the way. */
  advance(ms: number): Promise<void>
  /** Moves time forward to the epoch millisecond `at` (never backwards). */
  advanceTo(at: number): Promise<void>
  /** Fires the timers already due (0 ms) and drains pending promise chains; time stays put. */
  flush(): Promise<void>
  /** Jumps from timer to timer until none is left; fails past `limit` timers (a timer that re-arms forever). */
  runAll(limit?: number): Promise<void>
  /** How many timers are waiting. */
  pending(): number
  /** When the earliest waiting timer fires, if any. */
  nextAt(): number | undefined
}

/** Lets every queued microtask and promise chain run (each turn of setImmediate drains the microtask queue). */
async function drain(): Promise<void> {
  for (let i = 0; i < 4; i++) await new Promise<void>((resolve) => setImmediate(resolve))
}

export function createManualClock(start = EPOCH): ManualClock {
  let now = start
  let seq = 0
  const timers: Timer[] = []

  const earliest = (): Timer | undefined => {
    let best: Timer | undefined
    for (const t of timers) if (!best || t.at < best.at || (t.at === best.at && t.seq < best.seq)) best = t
    return best
  }

  const fire = async (timer: Timer): Promise<void> => {
    timers.splice(timers.indexOf(timer), 1)
    now = Math.max(now, timer.at)
    timer.fn()
    await drain()
  }

  const schedule = (fn: () => void, ms: number): (() => void) => {
    const timer: Timer = { at: now + Math.max(0, ms), seq: seq++, fn }
    timers.push(timer)
    return () => {
      const i = timers.indexOf(timer)
      if (i >= 0) timers.splice(i, 1)
    }
  }

  const advanceTo = async (at: number): Promise<void> => {
    await drain()
    for (let next = earliest(); next && next.at <= at; next = earliest()) await fire(next)
    now = Math.max(now, at)
    await drain()
  }

  return {
    now: () => now,
    schedule,
    sleep: (ms) => new Promise<void>((resolve) => schedule(resolve, ms)),
    advance: (ms) => advanceTo(now + ms),
    advanceTo,
    flush: () => advanceTo(now),
    async runAll(limit = 10_000) {
      await drain()
      for (let fired = 0, next = earliest(); next; next = earliest()) {
        if (++fired > limit)
          throw new Error(`runAll: more than ${limit} timers fired; something re-arms forever`)
        await fire(next)
      }
    },
    pending: () => timers.length,
    nextAt: () => earliest()?.at,
  }
}

/**
 * Real time, real timers, but `now()` can be pushed forward: lets a test make the held token older
 * than the 10 s freshness window without sleeping, while upstream calls still run over real HTTP.
 */
export interface ShiftableClock extends Clock {
  shift(ms: number): void
}

export function shiftableClock(): ShiftableClock {
  let offset = 0
  return {
    now: () => Date.now() + offset,
    schedule: systemClock.schedule,
    sleep: systemClock.sleep,
    shift(ms) {
      offset += ms
    },
  }
}
