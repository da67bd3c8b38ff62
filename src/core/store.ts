import type { FailureKind } from './failure.js'
import type { Token } from './token.js'

/**
 * A held fleet lock: a short lease that its holder keeps alive.
 *
 * - `acquire(id, ttlMs)` takes it only if nobody holds it (Redis: `SET NX PX` with a unique value).
 * - While held, the store renews it every `ttlMs / 3` by compare-and-pexpire (only while the value
 *   is still ours). A holder that dies stops renewing, so its lock ends within `ttlMs`.
 * - `release()` stops the renewal and deletes the lock only while it still holds our value
 *   (compare-and-delete): after a lapse it may be someone else's.
 * - An `acquire` whose answer never came (a client-side timeout) may still have taken the lock when
 *   the server resumes: the store compare-and-deletes it with that attempt's value once the server
 *   answers again.
 *
 * Failover (Sentinel, Cluster) builds on these three rules; the lock never outlives a dead holder by
 * more than its TTL.
 */
export interface Lock {
  release(): Promise<void>
}

/** Forced mints of one credential counted in a fleet-wide window. */
export interface ForcedCount {
  /** Forced mints in the current window, this one included. */
  count: number
  /** Until the window ends (and the count starts again), ms. */
  resetInMs: number
}

/** A credential resting after a failed mint: nobody in the fleet calls upstream for it until then. */
export interface Brake {
  kind: FailureKind
  /** Epoch ms. */
  until: number
}

/**
 * What `getMany` read: the stored tokens by id, and the ids it could not read because their part of
 * the store did not answer (a Cluster node down). Those are unknown rather than absent, and left out.
 */
export interface StoredTokens extends ReadonlyMap<string, Token> {
  readonly unknown: ReadonlySet<string>
}

export type StoreKind = 'memory' | 'redis'
export type StoreState = 'ok' | 'down'

export interface StoreStatus {
  kind: StoreKind
  state: StoreState
  /** Tokens are encrypted at rest (Redis with TOKEN_ENCRYPTION_KEY). */
  encrypted: boolean
}

/**
 * Where tokens are shared between replicas. The in-memory store serves one replica; the Redis
 * store serves a fleet. Both pass the same contract tests.
 *
 * Every method may reject when the backing service is unreachable; callers treat that as
 * "no shared state right now" and carry on from memory.
 */
export interface TokenStore {
  readonly kind: StoreKind
  /** The stored token, or undefined when absent, expired or unreadable (e.g. fails to decrypt). */
  get(id: string): Promise<Token | undefined>
  /**
   * The stored tokens of many credentials at once (warm-up), in a few round trips, in the order the
   * ids are given; ids that `get` finds nothing for (absent, expired or unreadable) are left out.
   * Where only part of the store fails (one Cluster node), only its ids are `unknown`; it rejects
   * when no part answers.
   */
  getMany(ids: readonly string[]): Promise<StoredTokens>
  /**
   * Stores the token until its expiry, unless a token minted later (greater `mintedAt`) is already
   * stored: then nothing is written and the result is false. The check and the write are atomic.
   * A successful write notifies every subscriber (see `onToken`), in this process and others.
   */
  put(id: string, token: Token): Promise<boolean>
  /**
   * Takes the credential's lock, a lease of `ttlMs` renewed while held (see `Lock`), if nobody
   * holds it; undefined when somebody does.
   */
  acquire(id: string, ttlMs: number): Promise<Lock | undefined>
  /**
   * Counts one forced mint of the credential in a window of `windowMs` shared by the whole fleet
   * (atomically in Redis); the window starts with its first count.
   */
  countForced(id: string, windowMs: number): Promise<ForcedCount>
  /** The fleet-wide failure brake on the credential, if one is in force. */
  getBrake(id: string): Promise<Brake | undefined>
  /** Sets (or, with undefined, lifts) the credential's failure brake for the whole fleet. */
  setBrake(id: string, brake: Brake | undefined): Promise<void>
  /** Called with the credential id whenever any replica stores a new token for it. */
  onToken(listener: (id: string) => void): void
  /** Called when the store changes state (for instance Redis going down or coming back). */
  onState(listener: (state: StoreState) => void): void
  status(): StoreStatus
  close(): Promise<void>
}
