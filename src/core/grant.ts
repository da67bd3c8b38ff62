/** What an upstream grants, validated. `expiresIn` is in seconds, in (0, 172800]. */
export interface Grant {
  accessToken: string
  tokenType: string
  mageId?: string
  expiresIn: number
}

/** One upstream attempt for one credential: no retries (the token manager owns retry policy). */
export type Mint = (signal?: AbortSignal) => Promise<Grant>
