import { MinTtlUnreachable } from '../core/failure.js'
import type { MintReason } from '../core/mint-reason.js'
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
  obtain(accept: Accept, reason: MintReason, worthAnother?: Accept): Promise<Token>
  /**
   * Like obtain, for a caller reporting `rejectedToken` rejected by upstream: when it is the held
   * token, the mint is a forced one (bounded fleet-wide) and that token is never held again.
   */
  replace(rejectedToken: string, accept: Accept): Promise<Token>
  /** The held token, after taking a newer one from the store (another replica's mint). */
  recheck(): Promise<Token | undefined>
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
    token = await unit.obtain(accept, 'min_ttl', (t) => !accept(t) && !isFresh(t, unit.now()))
  } catch (err) {
    // A held token that meets the need beats a failure: the default min_ttl's may be the one held
    // all along, an explicit one's may have come from another replica while this one's mint failed.
    const current = await unit.recheck()
    if (current && meets(current, minTtlS, unit.now())) return current
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
    // Never the rejected token, nor one older than the token held (a stale record, say).
    const floor = held?.mintedAt
    return unit.replace(
      rejectedToken,
      (t) => t.accessToken !== rejectedToken && alive(t) && (floor === undefined || t.mintedAt > floor),
    )
  }
  if (held && isFresh(held, unit.now()) && alive(held)) return Promise.resolve(held)
  return unit.obtain((t) => isFresh(t, unit.now()) && alive(t), 'forced')
}

function unreachable(minTtlS: number | undefined): MinTtlUnreachable {
  return new MinTtlUnreachable(
    minTtlS === undefined
      ? 'the held token is as fresh as upstream grants, yet shorter than the default min_ttl'
      : `no token upstream grants can have ${minTtlS} seconds left`,
  )
}
