import { MinTtlUnreachable } from '../core/failure.js'
import type { Token } from '../core/token.js'
import { isFresh, meets, remainingMs } from './freshness.js'

export type Accept = (token: Token) => boolean

/** What serving a caller needs from a credential unit. */
export interface Serving {
  held(): Token | undefined
  /**
   * A new token `accept` takes, through the unit's single shared run; one more go when the run
   * joined served another need and `worthAnother` says a new mint could do better.
   */
  obtain(accept: Accept, worthAnother?: Accept): Promise<Token>
  now(): number
}

/** A token with at least `minTtlS` seconds left (default: min(60 s, 10 % of its lifetime)). */
export async function getToken(unit: Serving, minTtlS: number | undefined): Promise<Token> {
  const held = unit.held()
  if (held && meets(held, minTtlS, unit.now())) return held
  if (held && isFresh(held, unit.now())) throw unreachable(minTtlS)
  const accept = (t: Token) => meets(t, minTtlS, unit.now())
  let token: Token
  try {
    token = await unit.obtain(accept, (t) => !accept(t) && !isFresh(t, unit.now()))
  } catch (err) {
    // The default min_ttl: a held token that still meets it beats a failure.
    const current = unit.held()
    if (minTtlS === undefined && current && meets(current, undefined, unit.now())) return current
    throw err
  }
  if (!accept(token)) throw unreachable(minTtlS)
  return token
}

/**
 * A fresh token. With `rejectedToken`: if it is no longer current, the current one (no mint).
 * Without: a token minted within the last 10 s is fresh enough (debounce).
 */
export function refreshToken(unit: Serving, rejectedToken: string | undefined): Promise<Token> {
  const held = unit.held()
  const alive = (t: Token) => remainingMs(t, unit.now()) > 0
  if (rejectedToken !== undefined) {
    if (held && held.accessToken !== rejectedToken && alive(held)) return Promise.resolve(held)
    return unit.obtain((t) => t.accessToken !== rejectedToken && alive(t))
  }
  if (held && isFresh(held, unit.now()) && alive(held)) return Promise.resolve(held)
  return unit.obtain((t) => isFresh(t, unit.now()) && alive(t))
}

function unreachable(minTtlS: number | undefined): MinTtlUnreachable {
  return new MinTtlUnreachable(
    minTtlS === undefined
      ? 'the held token is as fresh as upstream grants, yet shorter than the default min_ttl'
      : `no token upstream grants can have ${minTtlS} seconds left`,
  )
}
