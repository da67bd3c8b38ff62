import { createHash } from 'node:crypto'
import { lifetimeMs, type Token } from './token.js'

/** The longest a replica's own jitter pulls a refresh forward, to spread replicas apart. */
const MAX_JITTER_MS = 5 * 60_000
/** The share of the refresh margin, before the margin starts, over which credentials' refreshes spread. */
export const SPREAD_SHARE = 0.5

/** When the token enters its refresh margin: the latest its background refresh is due. */
export const marginStart = (token: Token, margin: number): number =>
  token.expiresAt - margin * lifetimeMs(token)

/**
 * Where in the spread this credential's refresh of this token falls, in [0, 1). It is a digest of
 * both, so every replica holding the token agrees on it (the fleet refreshes once, not at the
 * earliest of several draws), while credentials minted together land apart, and differently each
 * cycle.
 */
export function spreadPoint(credential: string, token: Token): number {
  const digest = createHash('sha256').update(`${credential}\0${token.mintedAt}`).digest()
  return digest.readUInt32BE(0) / 2 ** 32
}

/**
 * The moment to refresh: before the token enters its margin, by the credential's place in the
 * spread (up to half the margin window), then by this replica's random jitter (up to a tenth of the
 * window, capped at five minutes) so that one replica of the fleet goes first and the others take
 * its token. With a margin over half the lifetime, both are measured on the time before the margin
 * instead, so a token is never due the moment it is minted.
 */
export function refreshAt(credential: string, token: Token, margin: number, random: () => number): number {
  const window = margin * lifetimeMs(token)
  const room = Math.min(window, lifetimeMs(token) - window)
  const spread = Math.floor(spreadPoint(credential, token) * SPREAD_SHARE * room)
  const jitter = Math.floor(random() * Math.min(0.1 * room, MAX_JITTER_MS))
  return marginStart(token, margin) - spread - jitter
}
