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
  /** Which settings minted it; absent on tokens stored by earlier releases. */
  readonly generation?: Generation
}

/**
 * The settings a token was minted with, for the generation fence (docs/fleet.md): a token whose
 * mint started before the settings of the stored token took effect never replaces it.
 */
export interface Generation {
  /** A digest of the credential's settings (secrets included), equal on replicas with equal settings. */
  readonly settings: string
  /** Epoch ms since when the minting replica used these settings (its start or last reload). */
  readonly since: number
  /** Epoch ms the mint started. */
  readonly startedAt: number
}

/** Whether a write of `next` may replace `stored`: minted later, and not begun under older settings. */
export function replaces(next: Token, stored: Token): boolean {
  if (stored.mintedAt >= next.mintedAt) return false
  const since = stored.generation?.since ?? 0
  return (next.generation?.startedAt ?? next.mintedAt) >= since
}

/** Longest lifetime the broker accepts (48 h), from upstream or read back from the store. */
export const MAX_EXPIRES_IN_S = 172_800
/**
 * Replicas' clocks may differ by this much (docs/fleet.md: The fleet clock): a mint time this far
 * ahead is still believed.
 */
export const MAX_CLOCK_SKEW_MS = 5 * 60_000
/**
 * A token goes verbatim into callers' `Authorization` headers: visible ASCII only, no spaces and no
 * control characters (header injection).
 */
const isPrintable = (s: string): boolean => /^[\x21-\x7e]+$/.test(s)

/** The fields of a token callers copy into their requests' headers. */
export type HeaderField = 'accessToken' | 'tokenType' | 'mageId'

/**
 * The first header-bound field that is not printable, or undefined: the one rule for an upstream
 * answer and for a record read back from the store, so a token one replica holds the others can read.
 */
export function unprintableField(t: {
  accessToken: string
  tokenType: string
  mageId?: string | undefined
}): HeaderField | undefined {
  if (!isPrintable(t.accessToken)) return 'accessToken'
  if (!isPrintable(t.tokenType)) return 'tokenType'
  if (t.mageId !== undefined && !isPrintable(t.mageId)) return 'mageId'
  return undefined
}

export const lifetimeMs = (token: Token): number => token.expiresAt - token.mintedAt

/**
 * The token with every time it carries moved by `deltaMs`: the same moments read on a clock whose
 * reading moved by that much (see FleetClock.onShift).
 */
export function restamped(token: Token, deltaMs: number): Token {
  const { generation } = token
  return {
    ...token,
    mintedAt: token.mintedAt + deltaMs,
    expiresAt: token.expiresAt + deltaMs,
    ...(generation
      ? {
          generation: {
            ...generation,
            since: generation.since + deltaMs,
            startedAt: generation.startedAt + deltaMs,
          },
        }
      : {}),
  }
}

/** The only form in which a token may appear in a log line. */
export function fingerprint(secret: string): string {
  return createHash('sha256').update(secret).digest('hex').slice(0, 8)
}
