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
  /** Upstream's own error code (IMS `error`, EQP `code`), only when it is a short plain identifier. */
  readonly code: string | undefined
  /**
   * What went wrong on the way, in the broker's own words from configured names and fixed error
   * codes only (an egress proxy by host:port, an untrusted certificate by host), never upstream text.
   */
  readonly detail: string | undefined

  constructor(
    reason: FailureReason,
    message: string,
    opts: { status?: number; retryAfterMs?: number; code?: string; detail?: string } = {},
  ) {
    super(message)
    this.detail = opts.detail
    this.reason = reason
    this.status = opts.status
    this.retryAfterMs = opts.retryAfterMs
    this.code = opts.code !== undefined && PLAIN_CODE.test(opts.code) ? opts.code : undefined
  }

  get kind(): FailureKind {
    return kindOf(this.reason)
  }
}

/** An error's message, or the thrown value as text: for log lines, never for callers. */
export const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err))

/** What an upstream error code must look like to be repeated anywhere (letters, digits, `_`, `.`, `-`). */
export const PLAIN_CODE = /^[A-Za-z0-9_.-]{1,64}$/

const REASON_TEXT: Readonly<Record<FailureReason, string>> = {
  rejected: 'token request rejected',
  timeout: 'token request timed out',
  network: 'token request failed (network error)',
  unavailable: 'token endpoint unavailable',
  malformed: 'token answer malformed',
}

/**
 * A failure in the broker's own words: the classification, the HTTP status and at most upstream's
 * short plain error code. Never upstream free text, which could echo a secret.
 */
export function describeFailure(failure: UpstreamError): string {
  const detail = [failure.status === undefined ? undefined : `HTTP ${failure.status}`, failure.code].filter(
    (part) => part !== undefined,
  )
  const why = failure.detail === undefined ? '' : `: ${failure.detail}`
  return `${REASON_TEXT[failure.reason]}${why}${detail.length ? ` (${detail.join(', ')})` : ''}`
}

/** Why a credential is failing, as its status reports it. `message` comes from describeFailure. */
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

/** Forced mints (a refresh naming the current token as rejected) per credential and window, fleet-wide. */
export const FORCED_MINTS_PER_WINDOW = 6
export const FORCED_WINDOW_MS = 60_000
/** The limit in words, for answers and API docs. */
export const FORCED_LIMIT_TEXT = `${FORCED_MINTS_PER_WINDOW} per ${FORCED_WINDOW_MS / 1000} s`

/**
 * A forced mint (a refresh naming the current token as rejected) beyond the fleet-wide limit per
 * credential: the caller may ask again after `retryAfterMs`.
 */
export class TooManyForcedMints extends Error {
  override readonly name = 'TooManyForcedMints'
  constructor(
    readonly credential: string,
    readonly retryAfterMs: number,
  ) {
    super(`credential "${credential}": too many forced refreshes; try again later`)
  }
}
