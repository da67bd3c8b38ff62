/**
 * At most `limit` token requests in flight per upstream origin, for the whole replica: one limiter
 * is shared by every credential's mint, so many credentials coming due together queue here (in
 * arrival order) instead of bursting upstream. It wraps the request, not the dispatcher, so it
 * composes with whatever dispatcher (pool, proxy agent) carries the request.
 */
export interface OriginLimiter {
  /** Runs `task` once a slot for `origin` is free; leaves the queue early when `signal` aborts. */
  run<T>(origin: string, task: () => Promise<T>, signal?: AbortSignal): Promise<T>
  /** Requests in flight for `origin` now. */
  inFlight(origin: string): number
}

interface Lane {
  active: number
  waiting: Array<() => void>
}

export function createOriginLimiter(limit: number): OriginLimiter {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError('limit must be a positive integer')
  const lanes = new Map<string, Lane>()

  const acquire = (origin: string, signal: AbortSignal | undefined): Promise<Lane> => {
    let lane = lanes.get(origin)
    if (!lane) {
      lane = { active: 0, waiting: [] }
      lanes.set(origin, lane)
    }
    const l = lane
    if (l.active < limit) {
      l.active++
      return Promise.resolve(l)
    }
    return new Promise<Lane>((resolve, reject) => {
      const onAbort = () => {
        const at = l.waiting.indexOf(take)
        if (at >= 0) l.waiting.splice(at, 1)
        reject(signal?.reason)
      }
      // Called by release() with the slot already handed over (active unchanged).
      const take = () => {
        signal?.removeEventListener('abort', onAbort)
        resolve(l)
      }
      if (signal?.aborted) return reject(signal.reason)
      signal?.addEventListener('abort', onAbort, { once: true })
      l.waiting.push(take)
    })
  }

  const release = (origin: string, lane: Lane): void => {
    const next = lane.waiting.shift()
    if (next) {
      next()
      return
    }
    lane.active--
    if (lane.active === 0) lanes.delete(origin)
  }

  return {
    async run(origin, task, signal) {
      const lane = await acquire(origin, signal)
      try {
        return await task()
      } finally {
        release(origin, lane)
      }
    },
    inFlight: (origin) => lanes.get(origin)?.active ?? 0,
  }
}
