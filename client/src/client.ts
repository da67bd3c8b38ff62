import { Agent, type Dispatcher, type RequestInfo, type RequestInit, type Response } from 'undici'
import { type BrokerToken, createBrokerApi } from './broker-api.js'
import { CredentialTokens } from './credential-tokens.js'
import { fetchWithToken } from './fetch.js'
import { tokenInterceptor } from './interceptor.js'

export interface BrokerClientOptions {
  /** The broker's base URL, e.g. `http://token-broker:8080`. */
  url: string
  /** This service's client key (sent as `Authorization: Bearer`; never logged, never in an error). */
  key: string
  /** Bound on one broker request, ms (default 5000). */
  timeoutMs?: number
  /** undici dispatcher for the broker requests; by default the client's own Agent, closed by close(). */
  dispatcher?: Dispatcher
  /** The clock (epoch ms) the cached tokens are aged by; default Date.now. */
  now?: () => number
}

export interface TokenOptions {
  /** Seconds the token must still be valid for; default: the broker's (60 s, or 10 % of a short lifetime). */
  minTtl?: number
}

export interface BrokerClient {
  /** The broker's token body for `credential`, from the local cache while it meets the minimum. */
  token(credential: string, options?: TokenOptions): Promise<BrokerToken>
  /** The headers to send to Adobe with the credential's token. */
  headers(credential: string): Promise<Record<string, string>>
  /** undici's fetch with the credential's headers; one retry with a new token on a 401. */
  fetch(credential: string, input: RequestInfo, init?: RequestInit): Promise<Response>
  /** Adobe refused `accessToken`: asks the broker for the next token (one request per rejected token). */
  rejected(credential: string, accessToken: string): Promise<BrokerToken>
  /** An undici compose interceptor doing what fetch() does, for any client on the composed dispatcher. */
  interceptor(credential: string): Dispatcher.DispatcherComposeInterceptor
  /** Closes the client's own connections to the broker. */
  close(): Promise<void>
}

const DEFAULT_TIMEOUT_MS = 5_000

export function createBrokerClient(options: BrokerClientOptions): BrokerClient {
  const { url, key } = options
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new TypeError('createBrokerClient: url must be an absolute http: or https: URL')
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new TypeError('createBrokerClient: url must be an absolute http: or https: URL')
  }
  if (typeof key !== 'string' || key === '') throw new TypeError('createBrokerClient: key is required')
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
  if (!(timeoutMs > 0)) throw new TypeError('createBrokerClient: timeoutMs must be a positive number')

  const ownAgent = options.dispatcher === undefined ? new Agent({ keepAliveTimeout: 30_000 }) : undefined
  const now = options.now ?? Date.now
  const api = createBrokerApi({ url, key, dispatcher: options.dispatcher ?? ownAgent!, timeoutMs, now })
  const units = new Map<string, CredentialTokens>()
  const unit = (credential: string): CredentialTokens => {
    let u = units.get(credential)
    if (u === undefined) {
      u = new CredentialTokens(credential, api, now)
      units.set(credential, u)
    }
    return u
  }
  const source = (credential: string) => {
    const u = unit(credential)
    return {
      cached: () => u.cached(),
      token: () => u.token(),
      rejected: (accessToken: string) => u.rejected(accessToken),
    }
  }

  return {
    token: (credential, opts) => {
      const minTtl = opts?.minTtl
      if (minTtl !== undefined && !(Number.isInteger(minTtl) && minTtl >= 0 && minTtl <= 86_400)) {
        return Promise.reject(new RangeError('minTtl must be an integer number of seconds from 0 to 86400'))
      }
      return unit(credential).token(minTtl)
    },
    headers: async (credential) => (await unit(credential).token()).headers,
    fetch: (credential, input, init) => fetchWithToken(source(credential), input, init),
    rejected: (credential, accessToken) => unit(credential).rejected(accessToken),
    interceptor: (credential) => tokenInterceptor(source(credential)),
    close: async () => {
      await ownAgent?.close()
    },
  }
}
