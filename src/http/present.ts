import type { Credential } from '../config/types.js'
import type { Token } from '../tokens/token.js'

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
    mage_id: token.mageId,
    headers,
  }
}

const secondsLeft = (token: Token, now: number) => Math.max(0, Math.floor((token.expiresAt - now) / 1000))

// A number no token can have left: where expires_in goes in the serialised body.
const PLACEHOLDER = `"expires_in":${Number.MAX_SAFE_INTEGER}`

interface Rendered {
  head: string
  tail: string
  /** The body last sent, and the expires_in it carries. */
  seconds: number
  body: Buffer
}
const rendered = new WeakMap<Token, Rendered>()

/**
 * The token's JSON body, as bytes. Everything but expires_in is fixed for a token's life, so the
 * body is serialised once per token (through the route's response schema, via `serialize`) and
 * re-rendered only when the whole seconds left change: callers asking within the same second share
 * one Buffer, which Fastify and Node send without encoding or measuring a string per request.
 */
export function tokenBody(
  credential: Credential,
  token: Token,
  now: number,
  serialize: (view: ReturnType<typeof present>) => string,
): Buffer {
  const seconds = secondsLeft(token, now)
  let r = rendered.get(token)
  if (!r) {
    const json = serialize({ ...present(credential, token, now), expires_in: Number.MAX_SAFE_INTEGER })
    const at = json.indexOf(PLACEHOLDER)
    const head = json.slice(0, at + '"expires_in":'.length)
    const tail = json.slice(at + PLACEHOLDER.length)
    r = { head, tail, seconds, body: Buffer.from(head + seconds + tail) }
    rendered.set(token, r)
  } else if (r.seconds !== seconds) {
    r.seconds = seconds
    r.body = Buffer.from(r.head + seconds + r.tail)
  }
  return r.body
}

export const isoOrNull = (ms: number | undefined): string | null =>
  ms === undefined ? null : new Date(ms).toISOString()

export const lastErrorBody = (e: { code: string; message: string; at: number } | undefined) =>
  e === undefined ? null : { code: e.code, message: e.message, at: new Date(e.at).toISOString() }
