export type FailureKind = 'rejected' | 'unavailable'

/**
 * No usable token could be had: upstream refused the secret (`rejected`) or is failing
 * (`unavailable`). Messages are the broker's own words, safe to show callers.
 */
export class MintFailed extends Error {
  override readonly name = 'MintFailed'
  constructor(
    readonly kind: FailureKind,
    message: string,
    /** How long until the broker will try upstream again for this credential. */
    readonly retryAfterMs: number,
  ) {
    super(message)
  }
}

/** The caller asked for a remaining lifetime that no token upstream grants can have. */
export class MinTtlUnreachable extends Error {
  override readonly name = 'MinTtlUnreachable'
}
