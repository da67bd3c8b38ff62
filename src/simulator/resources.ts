import type { Answer, Kind } from './answers.js'

/**
 * The protected resources of the two seeds, so a token can be used as well as minted:
 * - EQP `GET /rest/v1/users/{mage_id}` with `Authorization: Bearer <ust>` (the user profile);
 * - an IMS-protected sample resource, `GET|POST /sample/v1/whoami`, which needs both
 *   `Authorization: Bearer <access_token>` and `X-API-Key: <client_id>`.
 * Each answers 401 for a token the simulator did not issue, one that expired, or one revoked.
 */
export const IMS_SAMPLE_PATH = '/sample/v1/whoami'
export const EQP_USER_PREFIX = '/rest/v1/users/'

/** What the simulator remembers of a token it issued; the token itself is only the map key. */
export interface IssuedToken {
  kind: Kind
  /** The IMS client_id or EQP appId it was issued to. */
  id: string
  mageId?: string
  expiresAt: number
  revoked: boolean
}

/** Enough for every test and demo; the oldest are forgotten first (then they are "not issued"). */
const MAX_TOKENS = 10_000

export interface TokenRegistry {
  issue(token: string, t: Omit<IssuedToken, 'revoked'>): void
  /** Revokes one token, or every token issued to `id`; returns how many were revoked. */
  revoke(which: { token?: string; id?: string }): number
  lookup(token: string): IssuedToken | undefined
  clear(): void
}

export function createTokenRegistry(): TokenRegistry {
  const tokens = new Map<string, IssuedToken>()
  return {
    issue(token, t) {
      tokens.set(token, { ...t, revoked: false })
      if (tokens.size > MAX_TOKENS) tokens.delete(tokens.keys().next().value!)
    },
    revoke({ token, id }) {
      let n = 0
      for (const [key, t] of tokens) {
        if ((token !== undefined && key === token) || (id !== undefined && t.id === id)) {
          if (!t.revoked) n++
          t.revoked = true
        }
      }
      return n
    },
    lookup: (token) => tokens.get(token),
    clear: () => tokens.clear(),
  }
}

export interface ResourceRequest {
  method: string
  path: string
  authorization: string | undefined
  apiKey: string | undefined
}

const json = (status: number, body: unknown): Answer => ({
  status,
  contentType: 'application/json',
  body: JSON.stringify(body),
})
/** The answer names why, never the token. */
const unauthorized = (why: string): Answer => json(401, { error: 'unauthorized', message: why })

export type ResourceOutcome = { answer: Answer; id?: string } | undefined

/**
 * Answers a request for a protected resource, or undefined when the path is not one.
 * `forcedUnauthorized(id)` is the switch that makes a resource keep answering 401 for an id.
 */
export function resourceAnswer(
  req: ResourceRequest,
  registry: TokenRegistry,
  now: number,
  forcedUnauthorized: (id: string) => boolean,
): ResourceOutcome {
  const isIms = req.path === IMS_SAMPLE_PATH && (req.method === 'GET' || req.method === 'POST')
  const isEqp = req.path.startsWith(EQP_USER_PREFIX) && req.method === 'GET'
  if (!isIms && !isEqp) return undefined

  const bearer = /^Bearer (\S+)$/i.exec(req.authorization ?? '')?.[1]
  if (bearer === undefined) return { answer: unauthorized('missing bearer token') }
  if (isIms && !req.apiKey) return { answer: unauthorized('missing X-API-Key') }
  const t = registry.lookup(bearer)
  if (t === undefined || t.kind !== (isIms ? 'ims' : 'eqp')) {
    return { answer: unauthorized('token not issued here') }
  }
  if (t.revoked) return { answer: unauthorized('token revoked'), id: t.id }
  if (t.expiresAt <= now) return { answer: unauthorized('token expired'), id: t.id }
  if (forcedUnauthorized(t.id)) return { answer: unauthorized('token refused'), id: t.id }

  if (isIms) {
    if (req.apiKey !== t.id)
      return {
        answer: json(403, { error: 'forbidden', message: 'X-API-Key does not match the token' }),
        id: t.id,
      }
    return { answer: json(200, { client_id: t.id, resource: 'sample' }), id: t.id }
  }
  const mageId = decodeURIComponent(req.path.slice(EQP_USER_PREFIX.length))
  if (mageId !== t.mageId) {
    return { answer: json(403, { code: '403', message: 'Access to another user is not allowed' }), id: t.id }
  }
  return { answer: json(200, { mage_id: mageId, name: 'Simulated Partner', status: 'active' }), id: t.id }
}
