import { lifetimeMs, type Token } from '../core/token.js'

/** A token minted this recently is as fresh as upstream makes them: asking again is pointless. */
export const FRESH_MS = 10_000
/** Default min_ttl: the smaller of 60 s and 10 % of the token's lifetime. */
const DEFAULT_MIN_TTL_CAP_S = 60

export const remainingMs = (token: Token, now: number): number => token.expiresAt - now

export const isFresh = (token: Token, now: number): boolean => now - token.mintedAt < FRESH_MS

const defaultMinTtlS = (token: Token): number => Math.min(DEFAULT_MIN_TTL_CAP_S, lifetimeMs(token) / 10_000)

/** Whether `token` still has `minTtlS` seconds left (default: min(60 s, 10 % of its lifetime)). */
export function meets(token: Token, minTtlS: number | undefined, now: number): boolean {
  const left = remainingMs(token, now)
  return left > 0 && left >= (minTtlS ?? defaultMinTtlS(token)) * 1000
}
