import { fullJitter } from '../core/backoff.js'
import { type Clock, sleepUnlessAborted } from '../core/clock.js'
import { type Credential, secretsOf } from '../core/credential.js'
import { errorText, type FailureReason, UpstreamError } from '../core/failure.js'
import type { Mint } from '../core/grant.js'
import type { Logger } from '../core/logger.js'
import type { MintReason } from '../core/mint-reason.js'
import { fingerprint, type Token } from '../core/token.js'
import type { Span, Tracer } from '../core/tracer.js'

export const ATTEMPTS_PER_MINT = 3
/** A Retry-After longer than this ends the mint; the failure brake then waits it out. */
export const MAX_INLINE_WAIT_MS = 5_000

export type UpstreamOutcome = 'success' | FailureReason

export interface ManagerEvents {
  upstreamAttempt(credential: Credential, outcome: UpstreamOutcome, durationMs: number): void
}

export interface AttemptDeps {
  clock: Clock
  random: () => number
  log: Logger
  events: ManagerEvents | undefined
  /** Shutdown: aborts the upstream call and cuts any wait short. */
  signal: AbortSignal
  tracer: Tracer
}

/** A new token and the index of the secret that got it. */
export interface Minted {
  token: Token
  secret: number
}

/**
 * The worst mint with `secrets` secrets: every request timing out, plus the waits between attempts.
 * A refused secret hands over to the next without counting as an attempt, so a mint makes up to
 * ATTEMPTS_PER_MINT + (secrets - 1) requests; a waiting replica must allow a live holder all of them.
 */
export function worstMintMs(upstreamTimeoutMs: number, secrets: number): number {
  const requests = ATTEMPTS_PER_MINT + Math.max(0, secrets - 1)
  return requests * upstreamTimeoutMs + (ATTEMPTS_PER_MINT - 1) * MAX_INLINE_WAIT_MS + 2_000
}

/** The order a mint tries the secrets in: the one in use, then the others in the file's order. */
export function secretOrder(count: number, inUse: number): number[] {
  const others = Array.from({ length: count }, (_, i) => i).filter((i) => i !== inUse)
  return inUse < count ? [inUse, ...others] : others
}

/**
 * One mint: up to three upstream attempts, waiting a jittered backoff (or upstream's Retry-After)
 * between transient failures. A refused secret moves at once to the next secret of the list (each
 * at most once per mint, without counting as an attempt); a transient failure never does, since it
 * says nothing about the secret. Rejects with an UpstreamError (the refusal of the last secret tried).
 */
export async function mintWithRetries(
  credential: Credential,
  mint: Mint,
  deps: AttemptDeps,
  inUse: number,
  reason: MintReason,
): Promise<Minted> {
  const span = deps.tracer.startSpan('token_broker.mint', {
    'token_broker.credential': credential.id,
    'token_broker.credential_type': credential.type,
    'token_broker.reason': reason,
  })
  try {
    const minted = await attempts(credential, mint, deps, inUse, reason, span)
    span.setAttributes({ 'token_broker.outcome': 'success', 'token_broker.secret_index': minted.secret })
    span.end()
    return minted
  } catch (err) {
    span.setAttributes({ 'token_broker.outcome': err instanceof UpstreamError ? err.reason : 'network' })
    span.end(err)
    throw err
  }
}

async function attempts(
  credential: Credential,
  mint: Mint,
  deps: AttemptDeps,
  inUse: number,
  reason: MintReason,
  mintSpan: Span,
): Promise<Minted> {
  const { clock, log, events, signal } = deps
  const order = secretOrder(secretsOf(credential).length, inUse)
  let tried = 0
  for (let attempt = 0; ; ) {
    const secret = order[tried] ?? 0
    const startedAt = clock.now()
    const t0 = performance.now()
    const span = deps.tracer.startSpan(
      'token_broker.upstream_request',
      {
        'token_broker.credential': credential.id,
        'token_broker.credential_type': credential.type,
        'token_broker.attempt': attempt,
        'token_broker.secret_index': secret,
      },
      mintSpan,
    )
    try {
      const grant = await mint(secret, signal)
      events?.upstreamAttempt(credential, 'success', performance.now() - t0)
      span.setAttributes({ 'token_broker.outcome': 'success' })
      span.end()
      // Expiry counts from when we asked, so the broker never believes a token lives longer than it does.
      const token: Token = {
        accessToken: grant.accessToken,
        tokenType: grant.tokenType,
        ...(grant.mageId === undefined ? {} : { mageId: grant.mageId }),
        mintedAt: clock.now(),
        expiresAt: startedAt + grant.expiresIn * 1000,
      }
      // The `token.minted` audit line; `secret` is the index of the secret that got the token.
      log.info(
        {
          event: 'token.minted',
          credential: credential.id,
          reason,
          token: fingerprint(token.accessToken),
          expiresIn: grant.expiresIn,
          attempt,
          secret,
        },
        'minted a new token',
      )
      return { token, secret }
    } catch (err) {
      // Cut by shutdown: no upstream failure, so no attempt counted; the caller sees the abort.
      if (signal.aborted) {
        span.end(err)
        throw err
      }
      const failure =
        err instanceof UpstreamError
          ? err
          : new UpstreamError('network', `upstream call failed: ${errorText(err)}`)
      events?.upstreamAttempt(credential, failure.reason, performance.now() - t0)
      span.setAttributes({
        'token_broker.outcome': failure.reason,
        ...(failure.status === undefined ? {} : { 'http.response.status_code': failure.status }),
      })
      span.end(failure)
      const retryAfter = failure.retryAfterMs
      const nextSecret = failure.kind === 'rejected' && tried + 1 < order.length
      const last =
        !nextSecret &&
        (failure.kind === 'rejected' ||
          attempt + 1 >= ATTEMPTS_PER_MINT ||
          (retryAfter !== undefined && retryAfter > MAX_INLINE_WAIT_MS))
      log.debug(
        { credential: credential.id, reason: failure.reason, status: failure.status, attempt, secret, last },
        nextSecret ? 'secret refused: trying the next one' : 'upstream attempt failed',
      )
      if (last) throw failure
      if (nextSecret) {
        tried++
        continue
      }
      attempt++
      // Shutdown cuts the wait short rather than holding close() (and the fleet lock) for it.
      await sleepUnlessAborted(clock, retryAfter ?? fullJitter(attempt - 1, deps.random), signal)
      if (signal.aborted) throw failure
    }
  }
}
