import type { Clock } from '../core/clock.js'
import { errorText } from '../core/failure.js'
import type { Logger } from '../core/logger.js'
import type { Brake, Lock, TokenStore } from '../core/store.js'
import type { Token } from '../core/token.js'
import type { Notices } from './notices.js'

export interface CoordinateOptions {
  store: TokenStore
  id: string
  /** Whether a token found in the store already does what this mint was for. */
  accept: (token: Token) => boolean
  mint: () => Promise<Token>
  /**
   * The mint time of the token this replica holds, if any. A new token replaces it and whatever the
   * store held, so it is stamped after both (see `causal`).
   */
  after?: number
  /** The rest the whole fleet takes after this replica's mint failed with `err`; undefined: none. */
  brakeFor: (err: unknown) => Brake | undefined
  /**
   * A reload's mint: when another holds the lock (perhaps minting with the replaced settings), look
   * in the store once and mint without waiting; the generation fence orders the writes.
   */
  force?: boolean
  clock: Clock
  notices: Notices
  log: Logger
  /** Shutdown: stop waiting for the lock and give up. */
  signal: AbortSignal
  /**
   * The fleet lock's lease: the store renews it while this replica mints, so a holder that dies
   * leaves a lock that ends this soon.
   */
  lockTtlMs: number
  /**
   * What this need allows (epoch ms): the latest moment to stop waiting for another replica's
   * mint and mint without the lock.
   */
  waitUntil: number
  /**
   * A need that can wait for the store: while the store is unreachable before this moment (epoch
   * ms), give up with StoreUnreachable rather than mint without the lock; from it on, mint without.
   * Absent: a need that cannot wait mints without the lock at once.
   */
  storeWaitUntil?: number
  /** Fallback re-check while another replica mints, in case its announcement is lost. */
  pollMs: number
  /** Just before this replica calls upstream: may refuse the mint by throwing (forced-mint limit). */
  beforeMint?: () => Promise<void>
}

export interface Outcome {
  token: Token
  minted: boolean
  /** False when the store could not be written (it is retried when the store comes back). */
  saved: boolean
}

/** Another replica's mint failed moments ago: the fleet rests instead of asking upstream again. */
export class BrakeInForce extends Error {
  override readonly name = 'BrakeInForce'
  constructor(readonly brake: Brake) {
    super(
      `a mint by another replica failed (${brake.kind}); resting until ${new Date(brake.until).toISOString()}`,
    )
  }
}

/** The store could not be reached, and this need could wait for it rather than mint without the lock. */
export class StoreUnreachable extends Error {
  override readonly name = 'StoreUnreachable'
  constructor(cause: unknown) {
    super(`the store is unreachable: ${errorText(cause)}`)
  }
}

export class ShuttingDown extends Error {
  override readonly name = 'ShuttingDown'
  constructor() {
    super('the broker is shutting down')
  }
}

/**
 * One mint for the whole fleet: take the credential's lock, look in the store (another replica may
 * have just minted, or just failed), and only then call upstream. Replicas that lose the race wait
 * for the winner's token. When the store is unreachable the mint goes ahead without the lock:
 * serving callers matters more than avoiding a duplicate mint.
 */
export async function coordinate(o: CoordinateOptions): Promise<Outcome> {
  // A holder that died stops renewing: its lock ends within lockTtlMs and we take it then. A live
  // holder may keep it for its whole mint; we wait for that only as long as our need allows.
  const deadline = o.waitUntil
  const seen = { mintedAt: o.after ?? Number.NEGATIVE_INFINITY }
  let waiting = false
  for (;;) {
    if (o.signal.aborted) throw new ShuttingDown()
    let lock: Lock | undefined
    try {
      lock = await o.store.acquire(o.id, o.lockTtlMs)
    } catch (err) {
      // Each replica minting on its own is the cost of not waiting: paid only when the need must.
      if (o.storeWaitUntil !== undefined && o.clock.now() < o.storeWaitUntil) throw new StoreUnreachable(err)
      o.log.warn(
        { credential: o.id, err: errorText(err) },
        'store unreachable: minting without the fleet lock',
      )
      return mintAndSave(o, seen)
    }
    if (lock) {
      try {
        const found = await readStore(o, seen)
        if (found) return found
        return await mintAndSave(o, seen)
      } finally {
        await lock.release().catch((err: unknown) => {
          o.log.warn(
            { credential: o.id, err: errorText(err) },
            'could not release the fleet lock; it will expire',
          )
        })
      }
    }
    if (o.force) {
      const found = await readStore(o, seen)
      if (found) return found
      return mintAndSave(o, seen)
    }
    if (!waiting) {
      waiting = true
      o.log.debug(
        { credential: o.id, waitMs: Math.max(0, deadline - o.clock.now()) },
        'another replica holds the fleet lock: waiting for its token',
      )
    }
    await o.notices.wait(o.id, Math.max(0, Math.min(o.pollMs, deadline - o.clock.now())), o.signal)
    const found = await readStore(o, seen)
    if (found) return found
    if (o.clock.now() >= deadline) {
      o.log.warn(
        { credential: o.id },
        'waited for the fleet lock as long as this need allows: minting without it',
      )
      return mintAndSave(o, seen)
    }
  }
}

/** A token another replica stored that does the job, or the fleet's brake if one is in force. */
async function readStore(o: CoordinateOptions, seen: Seen): Promise<Outcome | undefined> {
  const stored = await o.store.get(o.id).catch(() => undefined)
  if (stored && stored.mintedAt > seen.mintedAt) seen.mintedAt = stored.mintedAt
  if (stored && o.accept(stored)) return { token: stored, minted: false, saved: true }
  const brake = await o.store.getBrake(o.id).catch(() => undefined)
  if (brake) throw new BrakeInForce(brake)
  return undefined
}

/** The latest mint time among the tokens this mint replaces: the one held and those read from the store. */
interface Seen {
  mintedAt: number
}

/**
 * A token minted to replace another is newer than it, whatever the clocks say: replicas' readings of
 * the fleet clock differ by the error of each one's offset, which can exceed the moments between a
 * token and the one minted at once to replace it (a caller reporting it rejected, say). Stamped
 * before it, the new token would lose to the fence and to every "newer than" check, and be minted
 * again. So its mint time is at least just after theirs (the rule of a Lamport clock).
 */
const causal = (token: Token, seen: Seen): Token =>
  token.mintedAt > seen.mintedAt ? token : { ...token, mintedAt: seen.mintedAt + 1 }

async function mintAndSave(o: CoordinateOptions, seen: Seen): Promise<Outcome> {
  await o.beforeMint?.()
  let token: Token
  try {
    token = causal(await o.mint(), seen)
  } catch (err) {
    // Tell the fleet, so the other replicas rest too rather than each trying in turn.
    const brake = o.signal.aborted ? undefined : o.brakeFor(err)
    if (brake) await o.store.setBrake(o.id, brake).catch(() => {})
    throw err
  }
  try {
    if (await o.store.put(o.id, token)) return { token, minted: true, saved: true }
    // Fenced: a token minted after ours is already stored. Prefer it, but only if it does what
    // this mint was for: it may be the very token a caller reported rejected (stored by a replica
    // whose clock runs ahead, or written back), and that is never handed out again.
    const newer = await o.store.get(o.id).catch(() => undefined)
    const ours = !newer || (!o.accept(newer) && o.accept(token))
    return { token: ours ? token : newer, minted: true, saved: true }
  } catch (err) {
    o.log.warn(
      { credential: o.id, err: errorText(err) },
      'could not store the new token; will retry when the store is back',
    )
    return { token, minted: true, saved: false }
  }
}
