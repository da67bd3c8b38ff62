import type { FailureKind } from './failure.js'
import type { Token } from './token.js'

/** A held fleet lock; releasing it deletes it only if it is still ours. */
export interface Lock {
  release(): Promise<void>
}

/** A credential resting after a failed mint: nobody in the fleet calls upstream for it until then. */
export interface Brake {
  kind: FailureKind
  /** Epoch ms. */
  until: number
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
   * Stores the token until its expiry, unless a token minted later (greater `mintedAt`) is already
   * stored: then nothing is written and the result is false. The check and the write are atomic.
   * A successful write notifies every subscriber (see `onToken`), in this process and others.
   */
  put(id: string, token: Token): Promise<boolean>
  /** Takes the credential's lock for `ttlMs` if nobody holds it; undefined when somebody does. */
  acquire(id: string, ttlMs: number): Promise<Lock | undefined>
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
