import type { Dispatcher } from 'undici'
import { MAX_RETRY_AFTER_MS } from '../core/backoff.js'
import { type Clock, systemClock } from '../core/clock.js'
import { PLAIN_CODE, UpstreamError } from '../core/failure.js'
import type { Grant, Mint } from '../core/grant.js'
import { dateOffset } from './clock-offset.js'
import type { OriginLimiter } from './limiter.js'
import { EgressProxyError, transportCode, untrustedCertificate } from './transport-errors.js'

/** What every mint needs to talk to upstream. */
export interface UpstreamDeps {
  readonly dispatcher: Dispatcher
  /** Bound on one whole attempt: connect, headers and body. */
  readonly timeoutMs: number
  /** Reads HTTP-date Retry-After values against it; the system clock unless a test drives time. */
  readonly clock?: Clock
  /** Told the upstream's clock offset (its `Date` header minus our clock) on every answer that has one. */
  readonly clockOffset?: (offsetMs: number) => void
  /** Shared by every credential of the replica: bounds requests in flight per upstream origin. */
  readonly limiter?: OriginLimiter
}

export interface TokenPost {
  /** Used in error messages only, e.g. 'IMS'. */
  readonly label: string
  readonly url: string
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
  /** Strings that must never reach an error message even if upstream echoes them (the secret). */
  readonly redact: readonly string[]
}

/**
 * An upstream's token endpoint: `label` names it in messages, `read` validates its answers. Gives,
 * per credential, the upstream attempt that posts that credential's request.
 */
export function tokenEndpoint(label: string, read: (answer: unknown) => Grant) {
  /**
   * One mint from one request prepared per secret, built once: the mint's argument picks the secret
   * by index (an index outside the list is a programming error). Every secret of the list is kept
   * out of error messages, since upstream may echo any of them.
   */
  return (
    deps: UpstreamDeps,
    secrets: readonly string[],
    requestFor: (secret: string) => Pick<TokenPost, 'url' | 'headers' | 'body'>,
  ): Mint => {
    const posts = secrets.map((secret): TokenPost => ({ label, redact: secrets, ...requestFor(secret) }))
    return async (index, signal) => {
      const post = posts[index]
      if (!post) throw new RangeError(`no secret at index ${index}`)
      return read(await postForJson(post, deps, signal))
    }
  }
}

/** A token answer is a few hundred bytes; anything far larger is not a token answer. */
export const MAX_BODY_BYTES = 64 * 1024

/**
 * One POST, no retries. Resolves with the parsed JSON of a 2xx answer; rejects with an UpstreamError
 * (or with the caller's abort reason when `signal` aborts). Messages carry fixed wording, the status
 * and at most a sanitized upstream error code: never the request, the answer text or a token.
 */
export function postForJson(post: TokenPost, deps: UpstreamDeps, signal?: AbortSignal): Promise<unknown> {
  if (!deps.limiter) return postOnce(post, deps, signal)
  // The time bound starts once a slot is free: waiting for one is not upstream's slowness.
  return deps.limiter.run(new URL(post.url).origin, () => postOnce(post, deps, signal), signal)
}

async function postOnce(post: TokenPost, deps: UpstreamDeps, signal?: AbortSignal): Promise<unknown> {
  const timeout = AbortSignal.timeout(deps.timeoutMs)
  const combined = signal === undefined ? timeout : AbortSignal.any([signal, timeout])
  const fail = (err: unknown): never => {
    throw classifyTransportError(err, post, deps.timeoutMs, timeout, signal)
  }

  let res: Dispatcher.ResponseData
  try {
    const target = new URL(post.url)
    res = await untilAborted(
      deps.dispatcher.request({
        origin: target.origin,
        path: `${target.pathname}${target.search}`,
        method: 'POST',
        headers: { ...post.headers, accept: 'application/json' },
        body: post.body,
        signal: combined,
        headersTimeout: deps.timeoutMs,
        bodyTimeout: deps.timeoutMs,
      }),
      combined,
    )
  } catch (err) {
    return fail(err)
  }

  let text: string | undefined
  try {
    text = await readCapped(res)
  } catch (err) {
    return fail(err)
  }

  if (deps.clockOffset !== undefined) {
    const offset = dateOffset(res.headers.date, (deps.clock ?? systemClock).now())
    if (offset !== undefined) deps.clockOffset(offset)
  }

  const status = res.statusCode
  if (status >= 200 && status < 300) {
    if (text === undefined) throw malformed(post.label, `answer larger than ${MAX_BODY_BYTES} bytes`, status)
    try {
      return JSON.parse(text)
    } catch {
      throw malformed(post.label, 'answer is not JSON', status)
    }
  }

  if (status === 400 || status === 401 || status === 403) {
    const code = upstreamErrorCode(text, post.redact)
    const suffix = code === undefined ? '' : `, ${code}`
    throw new UpstreamError('rejected', `${post.label} token request rejected (HTTP ${status}${suffix})`, {
      status,
      ...(code === undefined ? {} : { code }),
    })
  }
  const retryAfterMs = parseRetryAfter(res.headers['retry-after'], (deps.clock ?? systemClock).now())
  throw new UpstreamError('unavailable', `${post.label} token endpoint unavailable (HTTP ${status})`, {
    status,
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
  })
}

/**
 * undici honours `signal` only once a request has a connection; while the connection is still being
 * made (a tunnel through a proxy that never answers, say) the request would wait past the bound.
 * This gives up at the signal regardless; an answer that still comes later is dumped.
 */
function untilAborted(pending: Promise<Dispatcher.ResponseData>, signal: AbortSignal) {
  if (signal.aborted) return Promise.reject(signal.reason)
  return new Promise<Dispatcher.ResponseData>((resolve, reject) => {
    const onAbort = () => {
      reject(signal.reason)
      pending.then(
        (late) => late.body.dump(),
        () => {},
      )
    }
    signal.addEventListener('abort', onAbort, { once: true })
    pending.then(
      (res) => {
        signal.removeEventListener('abort', onAbort)
        resolve(res)
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(err)
      },
    )
  })
}

export function malformed(label: string, why: string, status?: number): UpstreamError {
  return new UpstreamError(
    'malformed',
    `${label} token answer malformed: ${why}`,
    status === undefined ? {} : { status },
  )
}

/**
 * Reads the whole body, or destroys the stream past MAX_BODY_BYTES and returns undefined.
 * Either way the body is finished with, so the connection is reused or closed, never left stalled.
 */
async function readCapped(res: Dispatcher.ResponseData): Promise<string | undefined> {
  const declared = Number(res.headers['content-length'])
  if (Number.isFinite(declared) && declared > MAX_BODY_BYTES) {
    res.body.destroy()
    return undefined
  }
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of res.body) {
    const buf = chunk as Buffer
    size += buf.length
    if (size > MAX_BODY_BYTES) {
      res.body.destroy()
      return undefined
    }
    chunks.push(buf)
  }
  return Buffer.concat(chunks).toString('utf8')
}

function classifyTransportError(
  err: unknown,
  { label, url }: TokenPost,
  timeoutMs: number,
  timeout: AbortSignal,
  callerSignal: AbortSignal | undefined,
): unknown {
  // The caller gave up (shutdown, say): hand its own reason back, as fetch does; this is not an upstream failure.
  if (callerSignal?.aborted && !timeout.aborted) return callerSignal.reason
  const code = transportCode(err)
  if (
    timeout.aborted ||
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT' ||
    code === 'UND_ERR_CONNECT_TIMEOUT'
  ) {
    return new UpstreamError('timeout', `${label} token request timed out after ${timeoutMs} ms`)
  }
  // Built from a host:port and an error code only, never from the proxy URL (which may hold a password).
  if (err instanceof EgressProxyError) {
    return new UpstreamError('network', `${label} token request failed: ${err.message}`, {
      detail: err.message,
    })
  }
  const untrusted = untrustedCertificate(err)
  if (untrusted !== undefined) {
    const detail = `certificate of ${new URL(url).host} not trusted (${untrusted})`
    return new UpstreamError('network', `${label} token request failed: ${detail}`, { detail })
  }
  const detail = code === undefined ? '' : ` (${code})`
  return new UpstreamError('network', `${label} token request failed: network error${detail}`)
}

/** The upstream error code (IMS `error`, EQP `code`), only if it is a short plain identifier. */
export function upstreamErrorCode(text: string | undefined, redact: readonly string[]): string | undefined {
  if (text === undefined) return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return undefined
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined
  const obj = parsed as Record<string, unknown>
  const raw = typeof obj.error === 'string' ? obj.error : obj.code
  if (typeof raw !== 'string' && typeof raw !== 'number') return undefined
  // Checked whole, never cut to fit: a cut could keep the first part of a secret upstream echoed.
  const code = String(raw)
  if (!PLAIN_CODE.test(code)) return undefined
  if (redact.some((s) => s !== '' && code.includes(s))) return undefined
  return code
}

/** Retry-After as delta-seconds or HTTP-date, in ms, capped at the longest rest the broker takes; undefined when absent or garbage. */
export function parseRetryAfter(value: string | string[] | undefined, now: number): number | undefined {
  const raw = (Array.isArray(value) ? value[0] : value)?.trim()
  if (raw === undefined || raw === '') return undefined
  let ms: number
  if (/^\d+$/.test(raw)) {
    ms = Number(raw) * 1000
  } else if (/^(Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,? /.test(raw)) {
    // All three HTTP-date forms (IMF-fixdate, RFC 850, asctime) start with a day name; Date.parse reads
    // them, but takes asctime (which has no zone) as local time, while HTTP dates are always GMT.
    const at = Date.parse(raw.endsWith('GMT') ? raw : `${raw} GMT`)
    if (!Number.isFinite(at)) return undefined
    ms = Math.max(0, at - now)
  } else {
    return undefined
  }
  return Math.min(ms, MAX_RETRY_AFTER_MS)
}
