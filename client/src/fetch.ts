import { Headers, type RequestInfo, type RequestInit, type Response, fetch as undiciFetch } from 'undici'
import { replayableBody } from './body.js'
import type { BrokerToken } from './broker-api.js'
import { mergeHeaders } from './headers.js'

export interface TokenSource {
  /** The cached token when it can be served at once. */
  cached(): BrokerToken | undefined
  token(): Promise<BrokerToken>
  rejected(accessToken: string): Promise<BrokerToken>
}

const isRequest = (input: RequestInfo): input is Exclude<RequestInfo, string | URL> =>
  typeof input === 'object' && !(input instanceof URL) && 'url' in input

function withToken(input: RequestInfo, init: RequestInit, token: BrokerToken): RequestInit {
  const own = init.headers ?? (isRequest(input) ? input.headers : undefined)
  // Plain header records (the common case) stay plain: fetch validates and copies them once anyway.
  const headers =
    own === undefined || (typeof own === 'object' && Object.getPrototypeOf(own) === Object.prototype)
      ? mergeHeaders(own as Record<string, string> | undefined, token.headers)
      : withTokenHeaders(new Headers(own), token.headers)
  return { ...init, headers: headers as RequestInit['headers'] }
}

function withTokenHeaders(headers: Headers, token: Record<string, string>): Headers {
  for (const name in token) headers.set(name, token[name]!)
  return headers
}

/**
 * undici's fetch with the credential's headers. On a 401, the token is reported rejected and the
 * request is sent once more with the new one; that answer is returned as it is, 401 or not.
 */
export async function fetchWithToken(
  source: TokenSource,
  input: RequestInfo,
  init: RequestInit = {},
): Promise<Response> {
  const used = source.cached() ?? (await source.token())
  const first = await undiciFetch(input, withToken(input, init, used))
  if (first.status !== 401) return first
  const replayable = replayableBody(init.body) && !(isRequest(input) && input.body !== null)
  if (!replayable) return first
  let fresh: BrokerToken
  try {
    fresh = await source.rejected(used.access_token)
  } catch {
    return first // no new token to try: Adobe's answer stands
  }
  if (fresh.access_token === used.access_token) return first
  await first.body?.cancel().catch(() => {})
  return undiciFetch(input, withToken(input, init, fresh))
}
