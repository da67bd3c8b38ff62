/** Time as the token logic sees it: injectable so that tests drive it without sleeping. */
export interface Clock {
  now(): number
  /** Runs `fn` after `ms`; returns a function that cancels it. Timers never keep the process alive. */
  schedule(fn: () => void, ms: number): () => void
  sleep(ms: number): Promise<void>
}

// setTimeout overflows (and fires at once) past 2^31-1 ms, about 24.8 days.
const MAX_TIMER_MS = 2 ** 31 - 1

export const systemClock: Clock = {
  now: () => Date.now(),
  schedule(fn, ms) {
    const timer = setTimeout(fn, Math.min(Math.max(0, ms), MAX_TIMER_MS))
    timer.unref()
    return () => clearTimeout(timer)
  },
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)).unref()),
}

/**
 * The fleet's clock: a replica's own clock plus its measured offset to a shared one (Redis TIME), so
 * replicas whose clocks drift still agree on when a token expires and when it is due.
 */
export interface FleetClock extends Clock {
  /** The replica's own clock, which the offset is measured against. */
  readonly base: Clock
  offsetMs(): number
  setOffset(ms: number): void
  /**
   * Called with the change (ms) each time the offset changes: every reading of "now" moved by that
   * much, so a time stamped on the old reading names a moment `deltaMs` off. Returns a function that
   * stops the calls.
   */
  onShift(listener: (deltaMs: number) => void): () => void
}

export function createFleetClock(base: Clock = systemClock): FleetClock {
  let offset = 0
  const listeners = new Set<(deltaMs: number) => void>()
  return {
    base,
    now: () => base.now() + offset,
    // Durations are the same on both clocks; only the reading of "now" moves.
    schedule: (fn, ms) => base.schedule(fn, ms),
    sleep: (ms) => base.sleep(ms),
    offsetMs: () => offset,
    setOffset(ms) {
      const delta = ms - offset
      offset = ms
      if (delta !== 0) for (const listener of [...listeners]) listener(delta)
    },
    onShift(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
  }
}

/** Whether `clock` is a fleet clock, whose reading moves when its offset is measured anew. */
export const isFleetClock = (clock: Clock): clock is FleetClock => 'onShift' in clock

/** Sleeps on `clock`, waking early (and quietly) when `signal` aborts. */
export function sleepUnlessAborted(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve()
    const wake = () => {
      cancel()
      signal.removeEventListener('abort', wake)
      resolve()
    }
    const cancel = clock.schedule(wake, ms)
    signal.addEventListener('abort', wake, { once: true })
  })
}
