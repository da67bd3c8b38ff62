/** What an upstream grants, validated. `expiresIn` is in seconds, in (0, 172800]. */
export interface Grant {
  accessToken: string
  tokenType: string
  mageId?: string
  expiresIn: number
}

/**
 * Why an upstream attempt failed.
 * - rejected: Adobe refused the secret (400/401/403). Retrying will not help.
 * - timeout, network, unavailable (5xx/429/other status), malformed: transient; worth retrying.
 */
export type FailureReason = 'rejected' | 'timeout' | 'network' | 'unavailable' | 'malformed'

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

  get rejected(): boolean {
    return this.reason === 'rejected'
  }
}

/** One upstream attempt for one credential: no retries (the token manager owns retry policy). */
export type Mint = (signal?: AbortSignal) => Promise<Grant>
