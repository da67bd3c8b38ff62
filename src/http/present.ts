import type { Credential } from '../core/credential.js'
import type { Token } from '../core/token.js'

/** The token as callers receive it; `expires_in` is the whole seconds left at `now`. */
function present(credential: Credential, token: Token, now: number) {
  const headers: { Authorization: string; 'X-API-Key'?: string } = {
    Authorization: `Bearer ${token.accessToken}`,
  }
  if (credential.type === 'ims') headers['X-API-Key'] = credential.clientId
  return {
    credential: credential.id,
    type: credential.type,
    token_type: token.tokenType,
    access_token: token.accessToken,
    expires_at: new Date(token.expiresAt).toISOString(),
    expires_in: secondsLeft(token, now),
    // Absent, not undefined, for IMS: the serialiser picks the token's schema by validating the object.
    ...(token.mageId === undefined ? {} : { mage_id: token.mageId }),
    headers,
  }
}

const secondsLeft = (token: Token, now: number) => Math.max(0, Math.floor((token.expiresAt - now) / 1000))

// A number no token can have left: where expires_in goes in the serialised body.
const PLACEHOLDER = `"expires_in":${Number.MAX_SAFE_INTEGER}`
const bodies = new WeakMap<Token, { head: string; tail: string }>()

/**
 * The token's JSON body. Everything but expires_in is fixed for a token's life, so the body is
 * serialised once per token (through the route's response schema, via `serialize`) and each
 * request only splices in the seconds left. The spliced string dies young with its request: a body
 * cached per token and second (as a string or a Buffer) saved a little with one credential but
 * lived long enough to be promoted, and with many credentials that old-generation churn cost more
 * than it saved (docs/performance.md, the bench's growth phase).
 */
export function tokenBody(
  credential: Credential,
  token: Token,
  now: number,
  serialize: (view: ReturnType<typeof present>) => string,
): string {
  let body = bodies.get(token)
  if (!body) {
    const json = serialize({ ...present(credential, token, now), expires_in: Number.MAX_SAFE_INTEGER })
    const at = json.indexOf(PLACEHOLDER)
    body = { head: json.slice(0, at + '"expires_in":'.length), tail: json.slice(at + PLACEHOLDER.length) }
    bodies.set(token, body)
  }
  return body.head + secondsLeft(token, now) + body.tail
}

export const isoOrNull = (ms: number | undefined): string | null =>
  ms === undefined ? null : new Date(ms).toISOString()
