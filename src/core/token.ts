import { createHash } from 'node:crypto'

/** An access token as the broker holds it in memory and in the store. Times are epoch milliseconds. */
export interface Token {
  readonly accessToken: string
  readonly tokenType: string
  /** EQP only: the account the session token belongs to. */
  readonly mageId?: string
  readonly expiresAt: number
  /** When the broker received it from upstream; orders tokens fleet-wide (the write fence). */
  readonly mintedAt: number
}

export const lifetimeMs = (token: Token): number => token.expiresAt - token.mintedAt

/** The only form in which a token may appear in a log line. */
export function fingerprint(secret: string): string {
  return createHash('sha256').update(secret).digest('hex').slice(0, 8)
}
