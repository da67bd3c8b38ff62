import { createHash, randomBytes, randomUUID } from 'node:crypto'
import type { MalformedKind } from './behaviour.js'

/** The two upstreams the simulator plays, with Adobe's request and answer shapes (see docs/api.md). */
export type Kind = 'ims' | 'eqp'

export interface Answer {
  status: number
  contentType: string
  body: string
}

/** A token request as received. `id` is '' when the request does not say who it is. */
export interface TokenRequest {
  id: string
  secret: string
  /** Set when the request does not have the upstream's shape; answered as is. */
  problem?: Answer
  /** EQP only: the lifetime asked for. */
  requestedExpiresIn?: number
}

export const IMS_DEFAULT_EXPIRES_IN = 86_399
export const EQP_MAX_EXPIRES_IN = 7_200

const b64url = (data: Buffer | string): string => Buffer.from(data).toString('base64url')
const json = (status: number, body: unknown): Answer => ({
  status,
  contentType: 'application/json',
  body: JSON.stringify(body),
})

/** IMS answers errors as `{error, error_description}`, EQP as `{code, message}`. */
export function errorAnswer(kind: Kind, status: number, code: string, description: string): Answer {
  return kind === 'ims'
    ? json(status, { error: code, error_description: description })
    : json(status, { code: String(status), message: description })
}

export function rejectAnswer(kind: Kind, status?: number): Answer {
  return kind === 'ims'
    ? errorAnswer('ims', status ?? 400, 'invalid_client', 'invalid client_id or client_secret')
    : errorAnswer('eqp', status ?? 401, '', 'Invalid application id or secret')
}

const mediaType = (contentType: string | undefined): string =>
  (contentType ?? '').split(';')[0]!.trim().toLowerCase()

export function parseImsRequest(contentType: string | undefined, body: string): TokenRequest {
  const bad = (code: string, why: string): Answer => errorAnswer('ims', 400, code, why)
  if (mediaType(contentType) !== 'application/x-www-form-urlencoded') {
    return { id: '', secret: '', problem: bad('invalid_request', 'Content-Type must be form-urlencoded') }
  }
  const form = new URLSearchParams(body)
  const id = form.get('client_id') ?? ''
  const secret = form.get('client_secret') ?? ''
  const grant = form.get('grant_type')
  if (id === '') return { id, secret, problem: bad('invalid_request', 'client_id is required') }
  if (grant === null) return { id, secret, problem: bad('invalid_request', 'grant_type is required') }
  if (grant !== 'client_credentials') {
    return { id, secret, problem: bad('unsupported_grant_type', 'grant_type must be client_credentials') }
  }
  return { id, secret }
}

export function parseEqpRequest(
  authorization: string | undefined,
  contentType: string | undefined,
  body: string,
): TokenRequest {
  const bad = (why: string): Answer => errorAnswer('eqp', 400, '', why)
  const basic = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(authorization ?? '')
  const decoded = basic ? Buffer.from(basic[1]!, 'base64').toString('utf8') : ''
  const colon = decoded.indexOf(':')
  if (colon <= 0) return { id: '', secret: '', problem: rejectAnswer('eqp') }
  const id = decoded.slice(0, colon)
  const secret = decoded.slice(colon + 1)

  if (mediaType(contentType) !== 'application/json') {
    return { id, secret, problem: bad('Content-Type must be application/json') }
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(body)
  } catch {
    return { id, secret, problem: bad('body is not JSON') }
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return { id, secret, problem: bad('body must be a JSON object') }
  }
  const { grant_type: grant, expires_in: requested } = parsed as Record<string, unknown>
  if (grant !== 'session') return { id, secret, problem: bad('grant_type must be session') }
  if (requested === undefined) return { id, secret }
  if (typeof requested !== 'number' || !Number.isInteger(requested) || requested <= 0) {
    return { id, secret, problem: bad('expires_in must be a positive integer') }
  }
  return { id, secret, requestedExpiresIn: requested }
}

/** A JWT-looking IMS token (`eyJ...`): unique, not signed, meaningful to nobody. */
function imsToken(id: string, issuedAt: number): string {
  const header = b64url(JSON.stringify({ alg: 'none', typ: 'JWT', x5u: 'simulator' }))
  const payload = b64url(JSON.stringify({ jti: randomUUID(), client_id: id, iat: issuedAt }))
  return `${header}.${payload}.${b64url(randomBytes(32))}`
}

/** Shaped like the EQP docs' example: 32 chars, a dot, 12 chars. */
const eqpToken = (): string => `${b64url(randomBytes(24))}.${b64url(randomBytes(9))}`

/** An account id is stable per app, as upstream's is. */
function mageId(appId: string): string {
  const n = createHash('sha256').update(appId).digest().readUInt32BE(0) % 1_000_000_000
  return `MAG${String(n).padStart(9, '0')}`
}

export function defaultLifetime(kind: Kind, req: TokenRequest): number {
  return kind === 'ims'
    ? IMS_DEFAULT_EXPIRES_IN
    : Math.min(req.requestedExpiresIn ?? EQP_MAX_EXPIRES_IN, EQP_MAX_EXPIRES_IN)
}

/** A grant; `issuedAt` (epoch ms, the simulator's clock) is written into IMS tokens as `iat`. */
export function grantAnswer(kind: Kind, id: string, expiresIn: unknown, issuedAt: number): Answer {
  return kind === 'ims'
    ? json(200, { access_token: imsToken(id, issuedAt), token_type: 'bearer', expires_in: expiresIn })
    : json(200, { mage_id: mageId(id), ust: eqpToken(), expires_in: expiresIn })
}

export function malformedAnswer(
  kind: Kind,
  id: string,
  which: MalformedKind,
  lifetime: number,
  issuedAt: number,
): Answer {
  switch (which) {
    case 'html':
      return {
        status: 200,
        contentType: 'text/html',
        body: '<!doctype html><html><body>Maintenance</body></html>',
      }
    case 'not_json':
      return { status: 200, contentType: 'application/json', body: '{"access_token": ' }
    case 'no_token':
      return kind === 'ims'
        ? json(200, { token_type: 'bearer', expires_in: lifetime })
        : json(200, { mage_id: mageId(id), expires_in: lifetime })
    case 'expires_zero':
      return grantAnswer(kind, id, 0, issuedAt)
    case 'expires_negative':
      return grantAnswer(kind, id, -5, issuedAt)
    case 'expires_huge':
      return grantAnswer(kind, id, 1e9, issuedAt)
    case 'expires_string':
      return grantAnswer(kind, id, String(lifetime), issuedAt)
  }
}
