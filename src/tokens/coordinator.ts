import type { Lock, TokenStore } from '../store/types.js'
import type { Clock } from './clock.js'
import type { Logger } from './logger.js'
import type { Notices } from './notices.js'
import type { Token } from './token.js'

export interface CoordinateOptions {
  store: TokenStore
  id: string
  /** Whether a token found in the store already does what this mint was for. */
  accept: (token: Token) => boolean
  mint: () => Promise<Token>
  clock: Clock
  notices: Notices
  log: Logger
  /** Outlives the worst mint (all attempts and waits), so a live holder never loses its lock. */
  lockTtlMs: number
  /** Fallback re-check while another replica mints, in case its announcement is lost. */
  pollMs: number
}

export interface Outcome {
  token: Token
  minted: boolean
  /** False when the store could not be written (it is retried when the store comes back). */
  saved: boolean
}

/**
 * One mint for the whole fleet: take the credential's lock, look in the store (another replica may
 * have just minted), and only then call upstream. Replicas that lose the race wait for the
 * winner's token. When the store is unreachable the mint goes ahead without the lock: serving
 * callers matters more than avoiding a duplicate mint.
 */
export async function coordinate(o: CoordinateOptions): Promise<Outcome> {
  // A holder that died leaves a lock that expires after lockTtlMs; we take it over then.
  const deadline = o.clock.now() + o.lockTtlMs + 2 * o.pollMs
  for (;;) {
    let lock: Lock | undefined
    try {
      lock = await o.store.acquire(o.id, o.lockTtlMs)
    } catch (err) {
      o.log.warn(
        { credential: o.id, err: errorText(err) },
        'store unreachable: minting without the fleet lock',
      )
      return mintAndSave(o)
    }
    if (lock) {
      try {
        const stored = await readStore(o)
        if (stored && o.accept(stored)) return { token: stored, minted: false, saved: true }
        return await mintAndSave(o)
      } finally {
        await lock.release().catch((err: unknown) => {
          o.log.warn(
            { credential: o.id, err: errorText(err) },
            'could not release the fleet lock; it will expire',
          )
        })
      }
    }
    await o.notices.wait(o.id, Math.max(0, Math.min(o.pollMs, deadline - o.clock.now())))
    const stored = await readStore(o)
    if (stored && o.accept(stored)) return { token: stored, minted: false, saved: true }
    if (o.clock.now() >= deadline) {
      o.log.warn({ credential: o.id }, 'gave up waiting for the fleet lock: minting without it')
      return mintAndSave(o)
    }
  }
}

async function mintAndSave(o: CoordinateOptions): Promise<Outcome> {
  const token = await o.mint()
  try {
    if (await o.store.put(o.id, token)) return { token, minted: true, saved: true }
    // Fenced: a token minted after ours is already stored. Prefer it.
    const newer = await readStore(o)
    return { token: newer ?? token, minted: true, saved: true }
  } catch (err) {
    o.log.warn(
      { credential: o.id, err: errorText(err) },
      'could not store the new token; will retry when the store is back',
    )
    return { token, minted: true, saved: false }
  }
}

async function readStore(o: CoordinateOptions): Promise<Token | undefined> {
  try {
    return await o.store.get(o.id)
  } catch {
    return undefined
  }
}

export const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err))
