import type { Clock } from '../core/clock.js'
import { FORCED_MINTS_PER_WINDOW, FORCED_WINDOW_MS, TooManyForcedMints } from '../core/failure.js'
import type { Logger } from '../core/logger.js'
import type { ForcedCount, TokenStore } from '../core/store.js'

/**
 * Bounds forced mints of one credential: the count lives in the store so the whole fleet shares it.
 * While the store is unreachable this replica counts on its own, so the bound still holds per replica.
 */
export function createForcedLimit(o: { store: TokenStore; id: string; clock: Clock; log: Logger }) {
  /** Written by countHere(): the window used while the store is unreachable. */
  let local: { count: number; resetAt: number } | undefined

  function countHere(): ForcedCount {
    const now = o.clock.now()
    if (!local || local.resetAt <= now) local = { count: 0, resetAt: now + FORCED_WINDOW_MS }
    local.count++
    return { count: local.count, resetInMs: local.resetAt - now }
  }

  return {
    /** Counts one forced mint about to start; throws TooManyForcedMints beyond the limit. */
    async admit(): Promise<void> {
      const counted = await o.store.countForced(o.id, FORCED_WINDOW_MS).catch(countHere)
      if (counted.count <= FORCED_MINTS_PER_WINDOW) return
      o.log.warn(
        { credential: o.id, forcedMints: counted.count, retryInMs: counted.resetInMs },
        'forced refresh refused: too many forced mints of this credential in a minute',
      )
      throw new TooManyForcedMints(o.id, counted.resetInMs)
    },
  }
}
