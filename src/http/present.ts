import type { Credential } from '../config/types.js'
import type { Token } from '../tokens/token.js'

interface Prepared {
  credential: string
  type: Credential['type']
  token_type: string
  access_token: string
  expires_at: string
  mage_id: string | undefined
  headers: { Authorization: string; 'X-API-Key'?: string }
}

// Everything but expires_in is fixed for a token's life: build it once, not per request.
const prepared = new WeakMap<Token, Prepared>()

function prepare(credential: Credential, token: Token): Prepared {
  const headers: Prepared['headers'] = { Authorization: `Bearer ${token.accessToken}` }
  if (credential.type === 'ims') headers['X-API-Key'] = credential.clientId
  return {
    credential: credential.id,
    type: credential.type,
    token_type: token.tokenType,
    access_token: token.accessToken,
    expires_at: new Date(token.expiresAt).toISOString(),
    mage_id: token.mageId,
    headers,
  }
}

/** The token as callers receive it; `expires_in` is the whole seconds left now. */
export function present(credential: Credential, token: Token, now: number) {
  let p = prepared.get(token)
  if (!p) {
    p = prepare(credential, token)
    prepared.set(token, p)
  }
  return {
    credential: p.credential,
    type: p.type,
    token_type: p.token_type,
    access_token: p.access_token,
    expires_at: p.expires_at,
    expires_in: Math.max(0, Math.floor((token.expiresAt - now) / 1000)),
    mage_id: p.mage_id,
    headers: p.headers,
  }
}

export const isoOrNull = (ms: number | undefined): string | null =>
  ms === undefined ? null : new Date(ms).toISOString()

export const lastErrorBody = (e: { code: string; message: string; at: number } | undefined) =>
  e === undefined ? null : { code: e.code, message: e.message, at: new Date(e.at).toISOString() }
