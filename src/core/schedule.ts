import { lifetimeMs, type Token } from './token.js'

/** The longest a refresh is pulled forward to spread replicas and credentials apart. */
const MAX_JITTER_MS = 5 * 60_000

/** When the token enters its refresh margin: background refresh is due from then on. */
export const marginStart = (token: Token, margin: number): number =>
  token.expiresAt - margin * lifetimeMs(token)

/**
 * The moment to refresh: `margin` of the lifetime left, minus a random jitter of at most a tenth of
 * the margin window (capped at five minutes).
 */
export function refreshAt(token: Token, margin: number, random: () => number): number {
  const jitterMax = Math.min(0.1 * margin * lifetimeMs(token), MAX_JITTER_MS)
  return marginStart(token, margin) - Math.floor(random() * jitterMax)
}
