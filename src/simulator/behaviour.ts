/** How the simulator answers token requests for one id (IMS client_id or EQP appId), or for '*'. */
export interface Behaviour {
  mode: 'ok' | 'error5xx' | 'rate_limited' | 'reject' | 'malformed' | 'hang'
  /** Retry-After for error5xx / rate_limited: a number of seconds, or a string sent verbatim (an HTTP-date). */
  retryAfter?: number | string
  /** Which broken answer `malformed` gives (default 'not_json'). */
  malformed?: MalformedKind
  /** Lifetime granted, seconds. Default: IMS 86399, EQP min(requested, 7200). */
  expiresIn?: number
  /** Delay before answering, ms. */
  latencyMs?: number
  /** Status for error5xx (default 503) or reject (default IMS 400, EQP 401). */
  status?: number
  /** How the protected resources treat this id's tokens: 'unauthorized' answers 401 to every one. */
  resource?: 'ok' | 'unauthorized'
  /** Secrets refused for this id (as a deleted client secret is), whatever else is accepted. */
  refuse?: string[]
}

export type Mode = Behaviour['mode']
export type MalformedKind =
  | 'html'
  | 'no_token'
  | 'expires_zero'
  | 'expires_negative'
  | 'expires_huge'
  | 'expires_string'
  | 'not_json'

const MODES: readonly string[] = [
  'ok',
  'error5xx',
  'rate_limited',
  'reject',
  'malformed',
  'hang',
] satisfies Mode[]
const MALFORMED: readonly string[] = [
  'html',
  'no_token',
  'expires_zero',
  'expires_negative',
  'expires_huge',
  'expires_string',
  'not_json',
] satisfies MalformedKind[]

const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v)

/**
 * Reads `{id, ...Behaviour}` from the control endpoint. Returns an error string for a bad field,
 * so a typo in a demo script is reported instead of silently ignored.
 */
export function parseBehaveRequest(body: unknown): { id: string; behaviour: Partial<Behaviour> } | string {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'body must be a JSON object'
  const { id, mode, retryAfter, malformed, expiresIn, latencyMs, status, resource, refuse, ...rest } =
    body as Record<string, unknown>
  const unknown = Object.keys(rest)
  if (unknown.length > 0) return `unknown field ${JSON.stringify(unknown[0])}`
  if (typeof id !== 'string' || id === '') return 'id must be a non-empty string'
  const b: Partial<Behaviour> = {}
  if (mode !== undefined) {
    if (typeof mode !== 'string' || !MODES.includes(mode)) return `mode must be one of ${MODES.join(', ')}`
    b.mode = mode as Mode
  }
  if (retryAfter !== undefined) {
    if (!(isNumber(retryAfter) && retryAfter >= 0) && typeof retryAfter !== 'string') {
      return 'retryAfter must be seconds (>= 0) or a string'
    }
    b.retryAfter = retryAfter
  }
  if (malformed !== undefined) {
    if (typeof malformed !== 'string' || !MALFORMED.includes(malformed)) {
      return `malformed must be one of ${MALFORMED.join(', ')}`
    }
    b.malformed = malformed as MalformedKind
  }
  if (expiresIn !== undefined) {
    if (!isNumber(expiresIn)) return 'expiresIn must be a number'
    b.expiresIn = expiresIn
  }
  if (latencyMs !== undefined) {
    if (!isNumber(latencyMs) || latencyMs < 0) return 'latencyMs must be a number >= 0'
    b.latencyMs = latencyMs
  }
  if (status !== undefined) {
    if (!Number.isInteger(status) || (status as number) < 200 || (status as number) > 599) {
      return 'status must be an integer in [200, 599]'
    }
    b.status = status as number
  }
  if (resource !== undefined) {
    if (resource !== 'ok' && resource !== 'unauthorized') return 'resource must be ok or unauthorized'
    b.resource = resource
  }
  if (refuse !== undefined) {
    if (!Array.isArray(refuse) || !refuse.every((s) => typeof s === 'string')) {
      return 'refuse must be an array of strings'
    }
    b.refuse = refuse as string[]
  }
  return { id, behaviour: b }
}
