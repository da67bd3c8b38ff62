/** What an upstream grants, validated. `expiresIn` is in seconds, in (0, 172800]. */
export interface Grant {
  accessToken: string
  tokenType: string
  mageId?: string
  expiresIn: number
}

/**
 * One upstream attempt for one credential with its `secret`-th secret (0-based, in the file's order):
 * no retries and no fallback to another secret (the token manager owns that policy).
 */
export type Mint = (secret: number, signal?: AbortSignal) => Promise<Grant>
