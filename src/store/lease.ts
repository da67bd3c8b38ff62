import type { Clock } from '../core/clock.js'
import type { Logger } from '../core/logger.js'
import type { Lock } from '../core/store.js'

/** The two levels a lease logs at. */
type LeaseLog = Pick<Logger, 'warn' | 'debug'>

export interface LeaseOptions {
  id: string
  ttlMs: number
  clock: Clock
  log: LeaseLog
  /** Extends the lock by `ttlMs` if it still holds our value; false when it is gone or someone else's. */
  renew: () => Promise<boolean>
  /** Deletes the lock if it still holds our value. */
  remove: () => Promise<unknown>
  /** The store closed: renewing stops (the lock then ends with its TTL, as a dead holder's does). */
  signal?: AbortSignal
}

/**
 * A lock kept alive by its live holder: renewed every third of its TTL, so a holder that dies (and
 * stops renewing) leaves a lock that ends within one TTL, while a live holder keeps it however long
 * its mint takes.
 */
export function holdLease(o: LeaseOptions): Lock {
  let released = false
  let cancel: (() => void) | undefined
  const every = Math.max(1, Math.floor(o.ttlMs / 3))

  const tick = async () => {
    cancel = undefined
    if (released || o.signal?.aborted) return
    try {
      if (!(await o.renew())) {
        o.log.warn(
          { credential: o.id },
          'fleet lock lost while minting; the write fence still guards the store',
        )
        return
      }
    } catch (err) {
      // One missed renewal leaves two thirds of the TTL for the next one.
      o.log.debug({ credential: o.id, err: (err as Error).message }, 'fleet lock renewal failed; retrying')
    }
    if (!released && !o.signal?.aborted) cancel = o.clock.schedule(tick, every)
  }
  cancel = o.clock.schedule(tick, every)

  return {
    // Never rejects: when the store is unreachable the lock simply ends with its TTL.
    async release() {
      if (released) return
      released = true
      cancel?.()
      try {
        await o.remove()
      } catch (err) {
        o.log.debug(
          { credential: o.id, err: (err as Error).message },
          'lock release failed; it expires by TTL',
        )
      }
    },
  }
}

const GIVE_UP_AFTER_MS = 120_000

/**
 * An acquire whose answer never came may still run when the server resumes (a stalled Redis runs
 * what it had received; commands on one connection run in order). Deletes what it may have taken,
 * with that attempt's value, as soon as the server answers a command again; stops on `signal`.
 */
export function releaseWhenAnswered(
  remove: () => Promise<unknown>,
  clock: Clock,
  signal: AbortSignal,
  log: LeaseLog,
  id: string,
): void {
  const started = clock.now()
  const attempt = async (n: number): Promise<void> => {
    if (signal.aborted || clock.now() - started > GIVE_UP_AFTER_MS) return
    try {
      await remove()
      log.debug({ credential: id }, 'released what a timed-out lock attempt may have taken')
    } catch {
      clock.schedule(() => void attempt(n + 1), Math.min(2_000, 100 * 2 ** n))
    }
  }
  void attempt(0)
}
