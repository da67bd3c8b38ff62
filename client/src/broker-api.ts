import { type Dispatcher, request } from 'undici'
import { BrokerError, safeCause } from './errors.js'

/** The broker's token body (its `GET /v1/tokens/{credential}` answer), as parsed. */
export interface BrokerToken {
  credential: string
  type: 'ims' | 'eqp'
  token_type: string
  access_token: string
  expires_at: string
  /** Whole seconds left when the broker answered. */
  expires_in: number
  /** What to send to Adobe with this token. */
  headers: Record<string, string>
  /** EQP only: the account the token belongs to. */
  mage_id?: string
}

export interface BrokerApiOptions {
  url: string
  key: string
  dispatcher: Dispatcher
  timeoutMs: number
  now: () => number
}

export interface BrokerApi {
  get(credential: string, minTtl?: number): Promise<BrokerToken>
  refresh(credential: string, rejectedToken: string): Promise<BrokerToken>
}

const MAX_BODY = 64 * 1024

/** The two calls the client makes to the broker; each bounded in time, each answer validated. */
export function createBrokerApi(opts: BrokerApiOptions): BrokerApi {
  const base = opts.url.replace(/\/+$/, '')
  const authorization = `Bearer ${opts.key}`

  async function call(
    credential: string,
    method: 'GET' | 'POST',
    path: string,
    body?: string,
  ): Promise<BrokerToken> {
    const where = `token-broker at ${base}`
    let res: Dispatcher.ResponseData
    try {
      res = await request(`${base}${path}`, {
        method,
        dispatcher: opts.dispatcher,
        headers:
          body === undefined ? { authorization } : { authorization, 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(opts.timeoutMs),
      })
    } catch (err) {
      throw new BrokerError(
        `${where} unreachable for credential "${credential}": ${safeCause(err).message}`,
        { code: 'BROKER_UNREACHABLE', credential },
        { cause: safeCause(err) },
      )
    }
    let text: string
    try {
      text = await readText(res.body)
    } catch (err) {
      throw new BrokerError(
        `${where} broke off its answer for credential "${credential}"`,
        { code: 'BROKER_UNREACHABLE', credential },
        { cause: safeCause(err) },
      )
    }
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      parsed = undefined
    }
    if (res.statusCode === 200) {
      const token = asToken(parsed)
      if (token) return token
      throw new BrokerError(`${where} answered 200 without a token for credential "${credential}"`, {
        statusCode: 200,
        code: 'BROKER_BAD_ANSWER',
        credential,
      })
    }
    const e = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Record<string, unknown>
    const code = typeof e.code === 'string' ? e.code : 'BROKER_BAD_ANSWER'
    const message = typeof e.message === 'string' ? e.message : `HTTP ${res.statusCode}`
    throw new BrokerError(
      `${where} refused credential "${credential}": ${res.statusCode} ${code}: ${message}`,
      {
        statusCode: res.statusCode,
        code,
        credential,
        retryAfter: retryAfter(res.headers['retry-after'], opts.now()),
      },
    )
  }

  return {
    get: (credential, minTtl) =>
      call(
        credential,
        'GET',
        `/v1/tokens/${encodeURIComponent(credential)}${minTtl === undefined ? '' : `?min_ttl=${minTtl}`}`,
      ),
    refresh: (credential, rejectedToken) =>
      call(
        credential,
        'POST',
        `/v1/tokens/${encodeURIComponent(credential)}/refresh`,
        JSON.stringify({ rejected_token: rejectedToken }),
      ),
  }
}

async function readText(body: Dispatcher.ResponseData['body']): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    size += (chunk as Buffer).length
    if (size > MAX_BODY) {
      body.destroy()
      throw new Error(`answer over ${MAX_BODY} bytes`)
    }
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}

const isString = (v: unknown): v is string => typeof v === 'string' && v !== ''

function asToken(v: unknown): BrokerToken | undefined {
  if (typeof v !== 'object' || v === null) return undefined
  const t = v as Record<string, unknown>
  if (!isString(t.access_token) || !isString(t.credential) || !isString(t.expires_at)) return undefined
  if (typeof t.expires_in !== 'number' || !(t.expires_in >= 0)) return undefined
  const h = t.headers
  if (typeof h !== 'object' || h === null) return undefined
  for (const value of Object.values(h)) if (typeof value !== 'string') return undefined
  return t as unknown as BrokerToken
}

/** `Retry-After` as seconds: a number of seconds or an HTTP date. */
function retryAfter(header: string | string[] | undefined, now: number): number | undefined {
  const raw = Array.isArray(header) ? header[0] : header
  if (raw === undefined || raw === '') return undefined
  if (/^\d+$/.test(raw.trim())) return Number(raw.trim())
  const at = Date.parse(raw)
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000))
}
