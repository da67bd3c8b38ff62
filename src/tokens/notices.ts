import type { Clock } from '../core/clock.js'

/** Lets a replica waiting on another's mint wake up as soon as the new token is announced. */
export function createNotices(clock: Clock) {
  const waiting = new Map<string, Set<() => void>>()
  return {
    /** Resolves when `id` is announced, after `ms`, or on `signal`'s abort, whichever is first. */
    wait(id: string, ms: number, signal?: AbortSignal): Promise<void> {
      return new Promise((resolve) => {
        if (signal?.aborted) return resolve()
        const waiters = waiting.get(id) ?? new Set<() => void>()
        waiting.set(id, waiters)
        const done = () => {
          cancel()
          signal?.removeEventListener('abort', done)
          waiters.delete(done)
          if (waiters.size === 0 && waiting.get(id) === waiters) waiting.delete(id)
          resolve()
        }
        const cancel = clock.schedule(done, ms)
        signal?.addEventListener('abort', done, { once: true })
        waiters.add(done)
      })
    },
    notify(id: string): void {
      for (const wake of [...(waiting.get(id) ?? [])]) wake()
    },
  }
}

export type Notices = ReturnType<typeof createNotices>
