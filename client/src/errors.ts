/**
 * Every failure of a broker call. `statusCode` and `code` are the broker's own (see its error
 * table); when the broker could not be reached or answered nonsense, `statusCode` is undefined and
 * `code` says so. Messages name the broker's URL and the credential, never a key or a token.
 */
export type BrokerErrorCode =
  | 'BAD_REQUEST'
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'CREDENTIAL_NOT_FOUND'
  | 'PAYLOAD_TOO_LARGE'
  | 'RATE_LIMITED'
  | 'UPSTREAM_REJECTED'
  | 'UPSTREAM_UNAVAILABLE'
  /** No answer: connection refused, reset, timed out. `cause` holds the network error. */
  | 'BROKER_UNREACHABLE'
  /** An answer that is not the broker's token or error shape. */
  | 'BROKER_BAD_ANSWER'
  | (string & {})

export class BrokerError extends Error {
  override readonly name = 'BrokerError'
  readonly statusCode: number | undefined
  readonly code: BrokerErrorCode
  readonly credential: string
  /** Seconds to wait before asking again, from the broker's `Retry-After`. */
  readonly retryAfter: number | undefined

  constructor(
    message: string,
    fields: { statusCode?: number; code: BrokerErrorCode; credential: string; retryAfter?: number },
    options?: { cause?: unknown },
  ) {
    super(message, options)
    this.statusCode = fields.statusCode
    this.code = fields.code
    this.credential = fields.credential
    this.retryAfter = fields.retryAfter
  }
}

/** Worth serving a cached token through: the broker (or its upstream) is down, not misconfigured. */
export function isOutage(err: unknown): boolean {
  if (!(err instanceof BrokerError)) return true
  return err.statusCode === undefined || err.statusCode === 429 || err.statusCode >= 500
}

/**
 * A network error as the `cause` of a BrokerError: only its name, code and message, so nothing
 * attached to the original (request options, headers) travels with the error.
 */
export function safeCause(err: unknown): Error {
  const e = err instanceof Error ? err : new Error(String(err))
  const cause = new Error(e.message)
  cause.name = e.name
  const code = (e as { code?: unknown }).code
  if (typeof code === 'string') Object.assign(cause, { code })
  return cause
}
