import { createHmac, timingSafeEqual } from 'node:crypto'
import { MAX_BRAKE_MS } from '../core/backoff.js'
import type { Brake } from '../core/store.js'
import {
  type Generation,
  MAX_CLOCK_SKEW_MS,
  MAX_EXPIRES_IN_S,
  type Token,
  unprintableField,
} from '../core/token.js'
import type { Keyring, Opened } from './crypto.js'

/**
 * What is read back from Redis is held to the rules of an upstream answer: anyone with write access
 * to Redis, or a bug in another release, could have put it there.
 */
type Checked = { token: Token; fault?: undefined } | { token?: undefined; fault: string }

/** What a stored token record was found to hold. */
export interface TokenRecordRead {
  /** The token, when the record holds one that is believed and not yet expired. */
  token?: Token
  /** Why the record is not believed, never quoting it. Neither set: nothing stored, or expired. */
  fault?: string
  /** An old key of the keyring opened the value: its plaintext, due to be sealed with the current key. */
  reseal?: string
}

/** The JSON a token is stored as (sealed, with a key): the fields read back, its generation included. */
export function tokenRecordJson(token: Token): string {
  return JSON.stringify({
    accessToken: token.accessToken,
    tokenType: token.tokenType,
    mageId: token.mageId,
    expiresAt: token.expiresAt,
    mintedAt: token.mintedAt,
    generation: token.generation,
  })
}

/**
 * The token in a record as stored (`m` the fence field, `v` the value, `k` the id of the key that
 * sealed it), opened with `keyring` under the record's own key name and held to the read-back rules.
 */
export function readTokenRecord(
  h: Record<string, string>,
  redisKey: string,
  keyring: Keyring | undefined,
  now: number,
): TokenRecordRead {
  const { m, v } = h
  if (m === undefined && v === undefined) return {} // no such key: nothing stored
  if (m === undefined || v === undefined) return { fault: 'missing fields' }
  if (!keyring) return believe(v, m, false, now)
  let opened: Opened
  try {
    opened = keyring.open(v, redisKey, h.k)
  } catch {
    return { fault: 'does not decrypt (tampered, moved, or no configured key)' }
  }
  const read = believe(opened.plaintext, m, true, now)
  return opened.current ? read : { ...read, reseal: opened.plaintext }
}

/** The opened record's token, if it meets the rules and its fence field `m` matches it. */
function believe(json: string, m: string, sealed: boolean, now: number): TokenRecordRead {
  let p: unknown
  try {
    p = JSON.parse(json)
  } catch {
    return { fault: sealed ? 'not JSON' : 'not JSON (encrypted while no key is set?)' }
  }
  const checked = checkStoredToken(p, now)
  if (checked.fault !== undefined) return { fault: checked.fault }
  const generation = (p as { generation?: unknown }).generation
  if (generation !== undefined && !isGeneration(generation)) return { fault: 'bad shape' }
  const token: Token = { ...checked.token, ...(isGeneration(generation) ? { generation } : {}) }
  // The fence field must match the payload, or the fence could be bypassed by a crafted value.
  if (Number(m) !== token.mintedAt) return { fault: 'fence field does not match' }
  if (token.expiresAt <= now) return {} // normal near expiry; Redis drops it shortly
  return { token }
}

function isGeneration(g: unknown): g is Generation {
  if (typeof g !== 'object' || g === null) return false
  const { settings, since, startedAt } = g as Record<string, unknown>
  return (
    typeof settings === 'string' &&
    typeof since === 'number' &&
    Number.isFinite(since) &&
    typeof startedAt === 'number' &&
    Number.isFinite(startedAt)
  )
}

const isTime = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v)

/** The token in a decoded record, or why it is not believed (never quoting the record). */
function checkStoredToken(p: unknown, now: number): Checked {
  const t = p as Partial<Record<keyof Token, unknown>> | null
  if (
    typeof t !== 'object' ||
    t === null ||
    typeof t.accessToken !== 'string' ||
    typeof t.tokenType !== 'string' ||
    (t.mageId !== undefined && typeof t.mageId !== 'string') ||
    !isTime(t.expiresAt) ||
    !isTime(t.mintedAt)
  ) {
    return { fault: 'bad shape' }
  }
  const unprintable = unprintableField({
    accessToken: t.accessToken,
    tokenType: t.tokenType,
    mageId: t.mageId,
  })
  if (unprintable) return { fault: `${unprintable} has characters a header cannot carry` }
  // A replica whose clock runs ahead is believed, by as much as the fleet allows (docs/fleet.md: The
  // fleet clock).
  if (t.mintedAt > now + MAX_CLOCK_SKEW_MS) return { fault: 'mint time in the future' }
  if (t.expiresAt > now + MAX_EXPIRES_IN_S * 1000 + MAX_CLOCK_SKEW_MS || t.expiresAt <= t.mintedAt) {
    return { fault: 'expiry out of range' }
  }
  return {
    token: {
      accessToken: t.accessToken,
      tokenType: t.tokenType,
      expiresAt: t.expiresAt,
      mintedAt: t.mintedAt,
      ...(t.mageId !== undefined ? { mageId: t.mageId } : {}),
    },
  }
}

const TAG_HEX = 32

/**
 * The brake as stored: `kind:until`, and with a record key `:tag` (an HMAC over the Redis key and
 * `kind:until`). Readers of the previous release split on ':' and take the first two fields, so
 * they still read it.
 */
export function encodeBrake(redisKey: string, brake: Brake, authKeys: readonly Buffer[] | undefined): string {
  const authKey = authKeys?.[0]
  const body = `${brake.kind}:${brake.until}`
  return authKey ? `${body}:${tag(authKey, redisKey, body)}` : body
}

/**
 * The brake in force, or undefined. With a record key, only a brake it authenticates is obeyed (an
 * untagged one may be forged by anyone who can write to Redis); a brake is never longer than the
 * broker ever sets.
 */
export function decodeBrake(
  redisKey: string,
  raw: string | null,
  authKeys: readonly Buffer[] | undefined,
  now: number,
): Brake | undefined {
  const [kind, until, mac] = (raw ?? '').split(':')
  if (kind !== 'rejected' && kind !== 'unavailable') return undefined
  const at = Number(until)
  if (!(at > now)) return undefined
  if (
    authKeys &&
    !(mac !== undefined && authKeys.some((k) => sameTag(mac, tag(k, redisKey, `${kind}:${until}`))))
  ) {
    return undefined
  }
  return { kind, until: Math.min(at, now + MAX_BRAKE_MS) }
}

/** Of two brakes, the one in force longer: the fleet rests until both have ended. */
export const laterBrake = (a: Brake | undefined, b: Brake | undefined): Brake | undefined =>
  !a || (b && b.until > a.until) ? b : a

const tag = (authKey: Buffer, redisKey: string, body: string): string =>
  createHmac('sha256', authKey).update(`${redisKey}\n${body}`).digest('hex').slice(0, TAG_HEX)

const sameTag = (a: string, b: string): boolean =>
  a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b))
