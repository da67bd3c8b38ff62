/**
 * The one failure vocabulary, from the upstream call to the HTTP answer.
 * - kind: what a failure means for callers. `rejected`: upstream refused the secret, retrying will
 *   not help. `unavailable`: upstream is failing for now.
 * - reason: the detail of one upstream attempt. `rejected` (400/401/403), or one of the transient
 *   reasons: `timeout`, `network`, `unavailable` (5xx/429/other status), `malformed` (a bad answer).
 */
export type FailureKind = 'rejected' | 'unavailable'
export type FailureReason = 'rejected' | 'timeout' | 'network' | 'unavailable' | 'malformed'

export const kindOf = (reason: FailureReason): FailureKind =>
  reason === 'rejected' ? 'rejected' : 'unavailable'

/** One upstream attempt failed. Messages never carry the request, the answer text or a token. */
export class UpstreamError extends Error {
  override readonly name = 'UpstreamError'
  readonly reason: FailureReason
  readonly status: number | undefined
  /** From a Retry-After header, when upstream sent one. */
  readonly retryAfterMs: number | undefined

  constructor(reason: FailureReason, message: string, opts: { status?: number; retryAfterMs?: number } = {}) {
    super(message)
    this.reason = reason
    this.status = opts.status
    this.retryAfterMs = opts.retryAfterMs
  }

  get kind(): FailureKind {
    return kindOf(this.reason)
  }
}

/** Why a credential is failing, as its status reports it. `message` is the upstream error's. */
export interface LastError {
  kind: FailureKind
  message: string
  at: number
}

/**
 * No usable token could be had for `credential`: upstream refused the secret (`rejected`) or is
 * failing (`unavailable`), or the broker is shutting down. The edge words it for callers.
 */
export class MintFailed extends Error {
  override readonly name = 'MintFailed'
  constructor(
    readonly kind: FailureKind,
    readonly credential: string,
    /** How long until the broker will try upstream again for this credential. */
    readonly retryAfterMs: number,
    readonly shuttingDown = false,
  ) {
    super(shuttingDown ? 'the broker is shutting down' : `credential "${credential}": upstream ${kind}`)
  }
}

/** The caller asked for a remaining lifetime that no token upstream grants can have. */
export class MinTtlUnreachable extends Error {
  override readonly name = 'MinTtlUnreachable'
}
