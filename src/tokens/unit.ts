import type { Clock } from '../core/clock.js'
import { type Credential, settingsDigest } from '../core/credential.js'
import { type LastError, MintFailed, TooManyForcedMints } from '../core/failure.js'
import type { Mint } from '../core/grant.js'
import type { Logger } from '../core/logger.js'
import type { MintReason } from '../core/mint-reason.js'
import { marginStart, refreshAt } from '../core/schedule.js'
import type { TokenStore } from '../core/store.js'
import { fingerprint, lifetimeMs, restamped, type Token } from '../core/token.js'
import type { Tracer } from '../core/tracer.js'
import { type ManagerEvents, mintWithRetries } from './attempts.js'
import { afterFailure, asUpstreamError, brakeAfter, type Failing } from './brake.js'
import { BrakeInForce, coordinate, ShuttingDown, StoreUnreachable } from './coordinator.js'
import { createForcedLimit } from './forced.js'
import { meets, remainingMs } from './freshness.js'
import type { Notices } from './notices.js'
import { type Accept, getToken, refreshToken, type Serving } from './serving.js'

const LOCK_POLL_MS = 250
const MIN_REFRESH_INTERVAL_MS = 1_000
/** How soon a background refresh that found the store unreachable tries it again. */
const STORE_RETRY_MS = 2_000

export type CredentialState = 'pending' | 'ok' | 'failing'

export interface CredentialStatus {
  credential: Credential
  state: CredentialState
  expiresAt: number | undefined
  refreshedAt: number | undefined
  nextRefreshAt: number | undefined
  lastError: LastError | undefined
  /** The 0-based index of the secret in use (kept until the next reload). */
  secret: number
}

/** What every credential unit shares: given by the registry. */
export interface UnitDeps {
  store: TokenStore
  mintFor: (credential: Credential) => Mint
  clock: Clock
  random: () => number
  log: Logger
  events: ManagerEvents | undefined
  tracer: Tracer
  notices: Notices
  refreshMargin: number
  /** The fleet lock's lease, renewed while held (see coordinate). */
  lockTtlMs: number
  /** The worst mint of a credential (all requests and waits): how long a live lock holder may take. */
  maxMintMs: (credential: Credential) => number
  /** Aborted by close(): upstream calls stop and no new mint starts. */
  signal: AbortSignal
  /** True once drain() was called: no more background refreshes. */
  draining: () => boolean
}

interface Held {
  readonly token: Token
  readonly refreshedAt: number
  readonly unsaved: boolean
}

/**
 * One credential: its token, refresh timer, in-flight mint, failure brake and last error. Each
 * piece of state has one writer (the function named beside it).
 */
export function createCredentialUnit(initial: Credential, deps: UnitDeps) {
  const { store, clock, log, signal } = deps
  /**
   * Written by configure() (and its `since` moved by restamp()). `since`, `digest`: the generation a
   * mint with them stamps its token with.
   */
  let settings = settingsFor(initial)
  /** Written by useSecret(): the first secret that worked, kept until the next reload. */
  let secret = 0
  /**
   * Written by setHeld(). `unsaved`: minted here and missed by the store; written back when it
   * returns, re-stamped first if the fleet clock moved meanwhile (restamp()).
   */
  let held: Held | undefined
  /** Written by setFailing(). */
  let failing: Failing | undefined
  /** Written by arm(). */
  let timer: { cancel: () => void; at: number } | undefined
  /** Written by obtain(): the shared run, and the settings it mints with. */
  let inflight: { settings: typeof settings; promise: Promise<Token> } | undefined
  /** Written by obtain(): how many mints this unit made, so a refresh can tell whether one followed. */
  let mints = 0
  /** Written by retire(): a removed credential arms nothing more. */
  let retired = false
  /** Written by noteRejected(): the last held token a caller reported rejected; never held again. */
  let rejected: string | undefined

  const id = initial.id
  const forcedLimit = createForcedLimit({ store, id, clock, log })
  const now = () => clock.now()
  const stopped = () => retired || signal.aborted

  function settingsFor(credential: Credential) {
    return {
      credential,
      mint: deps.mintFor(credential),
      digest: settingsDigest(credential),
      since: clock.now(),
    }
  }

  function configure(credential: Credential): void {
    settings = settingsFor(credential)
    useSecret(0)
  }

  function useSecret(index: number): void {
    if (index === secret) return
    secret = index
    // Once per change, never the secret itself: ops see that a rotation is half done.
    if (index > 0) log.warn({ credential: id, secret: index }, 'minting with a secret other than the first')
  }

  function setFailing(next: Failing | undefined): void {
    failing = next
  }

  function setHeld(next: Held): void {
    held = next
  }

  function noteRejected(accessToken: string): void {
    rejected = accessToken
  }

  function markSaved(token: Token): void {
    if (held?.token === token) setHeld({ ...held, unsaved: false })
  }

  /**
   * Holds `token` unless an equal or later one is already held, or it was reported rejected. A token
   * this replica minted replaces a held one reported rejected, whatever their mint times say (the
   * rejected one may carry a later time from a clock running ahead). Always re-arms the refresh timer.
   */
  function hold(token: Token, source: 'minted' | 'store', saved = true): void {
    const replacesRejected = source === 'minted' && held !== undefined && held.token.accessToken === rejected
    if (
      token.accessToken !== rejected &&
      (!held || token.mintedAt > held.token.mintedAt || replacesRejected)
    ) {
      setHeld({ token, refreshedAt: now(), unsaved: !saved })
      setFailing(undefined)
      if (source === 'store') {
        log.debug({ credential: id, token: fingerprint(token.accessToken) }, 'took token from store')
      }
    }
    arm()
    // The store may be back already, its return (and the resync it began) past while this mint
    // unwound: then nothing else would write the token back.
    if (!saved && held?.token === token && store.status().state === 'ok') void resync()
  }

  /**
   * Cancels the armed refresh and, unless `next` is false or refreshes have stopped, arms the next:
   * at the refresh moment, or no sooner than `notBefore`.
   */
  function arm(next = true, notBefore = 0): void {
    timer?.cancel()
    timer = undefined
    if (!next || stopped() || deps.draining()) return
    const at = Math.max(nextRefreshAt(), notBefore)
    timer = { cancel: clock.schedule(backgroundRefresh, at - now()), at }
  }

  function nextRefreshAt(): number {
    const t = now()
    // After a failure, try again once the brake ends (so a blip does not leave the credential
    // "failing" until the next refresh); otherwise at the refresh moment, but never more often
    // than once a second, whatever lifetime upstream grants.
    const due = held && !failing ? refreshAt(id, held.token, deps.refreshMargin, deps.random) : t
    return Math.max(due, failing?.until ?? 0, t, (held?.refreshedAt ?? 0) + MIN_REFRESH_INTERVAL_MS)
  }

  function backgroundRefresh(): void {
    // This timer has fired; the next is armed when braked, or by the mint's outcome.
    arm(false)
    if (stopped()) return
    if (braked()) {
      arm()
      return
    }
    const previous = held?.token
    const isDue = (t: Token) => now() >= marginStart(t, deps.refreshMargin)
    const accept = (t: Token) =>
      remainingMs(t, now()) > 0 && !isDue(t) && (!previous || t.mintedAt > previous.mintedAt)
    // Waiting on another replica's mint is fine while the held token lasts; not past it.
    const waitUntil = Math.min(
      now() + deps.maxMintMs(settings.credential),
      previous?.expiresAt ?? Number.POSITIVE_INFINITY,
    )
    // With the store unreachable (a failover, say), the refresh waits for it while the held token
    // has half its margin left: minting without the lock then would be one mint per replica.
    const storeWaitUntil = previous ? previous.expiresAt - (deps.refreshMargin / 2) * lifetimeMs(previous) : 0
    const need = { waitUntil, storeWaitUntil }
    obtain(accept, 'refresh', need)
      // A joined forced run the limit refused is no verdict on this refresh: go again, unforced.
      .catch((err: unknown) => {
        if (!(err instanceof TooManyForcedMints)) throw err
        return obtain(accept, 'refresh', need)
      })
      .catch((err: unknown) => {
        if (err instanceof StoreUnreachable) {
          log.debug({ credential: id }, 'store unreachable: the refresh waits for it')
          arm(true, now() + STORE_RETRY_MS)
        }
        // Anything else was recorded and re-armed by fail(); callers are served from memory meanwhile.
      })
  }

  const braked = () => failing !== undefined && now() < failing.until

  /** Brakes the credential after a failed mint and turns the failure into what callers get. */
  function fail(err: unknown): MintFailed {
    // An upstream call cut by shutdown arrives as the abort's own error: not an upstream failure either.
    if (err instanceof ShuttingDown || signal.aborted) return new MintFailed('unavailable', id, 1000, true)
    setFailing(afterFailure(err, failing, now()))
    if (!(err instanceof BrakeInForce)) {
      const failure = asUpstreamError(err)
      log.warn(
        {
          credential: id,
          reason: failure.reason,
          status: failure.status,
          failures: failing?.count,
          retryInMs: (failing?.until ?? 0) - now(),
        },
        'mint failed',
      )
    }
    arm()
    return brakeError()
  }

  function brakeError(): MintFailed {
    return new MintFailed(failing?.kind ?? 'unavailable', id, Math.max(0, (failing?.until ?? 0) - now()))
  }

  /**
   * A new token for this credential: one shared run in this process (single-flight), one mint across
   * the fleet (coordinate). `accept` says whether a token another replica just stored does the job;
   * `reason` is why this run mints, should it have to (a joined run keeps its own).
   */
  function obtain(
    accept: Accept,
    reason: MintReason,
    need: { forced?: boolean; force?: boolean; waitUntil?: number; storeWaitUntil?: number } = {},
  ): Promise<Token> {
    // A run begun with settings a reload has since replaced is not joined: it mints with those.
    if (inflight?.settings === settings) return inflight.promise
    if (braked()) return Promise.reject(brakeError())
    if (signal.aborted) return Promise.reject(new MintFailed('unavailable', id, 1000, true))
    const current = settings
    const replaced = () => current !== settings
    const run = async () => {
      try {
        const outcome = await coordinate({
          store,
          id,
          accept,
          force: need.force ?? false,
          ...(held ? { after: held.token.mintedAt } : {}),
          mint: async () => {
            const startedAt = now()
            const minted = await mintWithRetries(current.credential, current.mint, deps, secret, reason)
            if (!replaced()) useSecret(minted.secret)
            const { digest, since } = current
            return { ...minted.token, generation: { settings: digest, since, startedAt } }
          },
          // The replaced settings' failure says nothing about the new ones: no brake for them.
          brakeFor: (err) => (replaced() ? undefined : brakeAfter(err, failing, now())),
          signal,
          clock,
          notices: deps.notices,
          log,
          lockTtlMs: deps.lockTtlMs,
          // A live holder may take its whole mint; waiting that long is no worse than minting here.
          waitUntil: need.waitUntil ?? now() + deps.maxMintMs(current.credential),
          pollMs: LOCK_POLL_MS,
          ...(need.storeWaitUntil === undefined ? {} : { storeWaitUntil: need.storeWaitUntil }),
          ...(need.forced ? { beforeMint: forcedLimit.admit } : {}),
        })
        if (outcome.minted) mints++
        // Served to whoever joined this run, but never held over a token of the new settings.
        if (!replaced()) hold(outcome.token, outcome.minted ? 'minted' : 'store', outcome.saved)
        return outcome.token
      } catch (err) {
        const shuttingDown = err instanceof ShuttingDown || signal.aborted
        if (replaced()) throw new MintFailed(asUpstreamError(err).kind, id, 0, shuttingDown)
        if (err instanceof TooManyForcedMints) {
          // Not an upstream failure: nothing to brake, the held token stands; but a background
          // refresh that joined this run disarmed its timer, so arm the next one.
          arm()
          throw err
        }
        // Nor is a store a background refresh chose to wait for: it re-arms itself.
        if (err instanceof StoreUnreachable) throw err
        throw fail(err)
      }
    }
    const running = run().finally(() => {
      if (inflight?.promise === running) inflight = undefined
    })
    inflight = { settings: current, promise: running }
    return running
  }

  /** A token was stored (by any replica): wake this replica's waiters, and take it if it is newer. */
  async function takeStored(): Promise<void> {
    deps.notices.notify(id)
    await takeNewer()
  }

  /** Holds the stored token if it is valid and newer than the held one. */
  async function takeNewer(): Promise<void> {
    if (stopped()) return
    const stored = await store.get(id).catch(() => undefined)
    if (stored && remainingMs(stored, now()) > 0 && (!held || stored.mintedAt > held.token.mintedAt)) {
      hold(stored, 'store')
    }
  }

  /** The store is back: write the held token if it missed it, else take what it has. */
  async function resync(): Promise<void> {
    const token = held?.token
    if (!held?.unsaved || !token || remainingMs(token, now()) <= 0) return takeStored()
    try {
      const written = await store.put(id, token)
      markSaved(token)
      if (written) log.info({ credential: id }, 'wrote the held token to the store after it came back')
      // Fenced: another replica stored a newer token meanwhile; take it.
      else await takeStored()
    } catch {
      // Still down; the next 'ok' tries again.
    }
  }

  /**
   * The fleet clock's reading moved by `deltaMs` (its offset to Redis TIME measured anew): what this
   * unit stamped on the old reading moves with it, so it names the same moments. A token the store
   * holds is the fleet's and keeps its times; one minted here that the store missed (Redis
   * unreachable, the offset unknown) is re-stamped, in memory and so when written back.
   */
  function restamp(deltaMs: number): void {
    settings.since += deltaMs
    if (held) {
      const token = held.unsaved ? restamped(held.token, deltaMs) : held.token
      setHeld({ ...held, token, refreshedAt: held.refreshedAt + deltaMs })
    }
    // The refresh moment moved with them; a refresh under way arms the next one itself.
    if (timer) arm()
  }

  /**
   * A token `accept` takes. The shared run may have been started for another need (joined someone
   * else's mint) and hand back a token this one does not take: then one more go, when `worthAnother`.
   */
  async function obtainAccepted(
    accept: Accept,
    reason: MintReason,
    worthAnother: Accept = (t) => !accept(t),
    forced = false,
  ): Promise<Token> {
    const token = await obtain(accept, reason, { forced }).catch((err: unknown) => {
      // A joined background refresh that chose to wait for the store is no answer for a caller:
      // its own run mints, without the lock if it must.
      if (err instanceof StoreUnreachable) return obtain(accept, reason, { forced })
      // The forced-mint limit is for forced refreshes: a caller that is not forcing and joined a
      // refused forced run goes again with its own, unforced run.
      if (forced || !(err instanceof TooManyForcedMints)) throw err
      return obtain(accept, reason)
    })
    return worthAnother(token) ? obtain(accept, reason, { forced }) : token
  }

  const serving: Serving = {
    held: () => held?.token,
    obtain: obtainAccepted,
    replace(rejectedToken, accept) {
      // Forced: the caller reports the very token held. Counted against the fleet-wide limit.
      const forced = held?.token.accessToken === rejectedToken
      if (forced) noteRejected(rejectedToken)
      return obtainAccepted(accept, 'rejected_token', undefined, forced)
    },
    async recheck() {
      await takeNewer().catch(() => {})
      return held?.token
    },
    now,
  }

  return {
    get credential(): Credential {
      return settings.credential
    },

    /** The hot path: the held token if it meets `minTtlS`. No I/O, no promise. */
    peek(minTtlS: number | undefined): Token | undefined {
      const token = held?.token
      return token && meets(token, minTtlS, clock.now()) ? token : undefined
    },

    /** A token with at least `minTtlS` seconds left, minting one first if the held token has less. */
    get: (minTtlS: number | undefined): Promise<Token> => getToken(serving, minTtlS),

    /**
     * A fresh token, or the current one when `rejectedToken` is no longer current. Writes the
     * `token.refresh_requested` audit line, saying whether a mint followed (`client`: who asked).
     */
    async refresh(rejectedToken: string | undefined, client?: string): Promise<Token> {
      const before = mints
      const audit = (ok: boolean) =>
        log.info(
          {
            event: 'token.refresh_requested',
            client: client ?? null,
            credential: id,
            minted: mints > before,
            ok,
          },
          'refresh requested',
        )
      try {
        const token = await refreshToken(serving, rejectedToken)
        audit(true)
        return token
      } catch (err) {
        audit(false)
        throw err
      }
    },

    status(): CredentialStatus {
      const token = held?.token
      const valid = token !== undefined && remainingMs(token, now()) > 0
      const tried = held !== undefined || failing !== undefined
      return {
        credential: settings.credential,
        state: !tried ? 'pending' : failing || !valid ? 'failing' : 'ok',
        expiresAt: token?.expiresAt,
        refreshedAt: held?.refreshedAt,
        nextRefreshAt: timer?.at,
        lastError: failing?.lastError,
        secret,
      }
    },

    /**
     * Warm-up: take what the fleet holds (a restarted replica), else mint. Never rejects. `read`
     * gives the stored token when the registry already read it with the others.
     */
    async warm(read: () => Promise<Token | undefined> = () => store.get(id)): Promise<void> {
      const stored = await read().catch(() => undefined)
      if (stored && remainingMs(stored, now()) > 0) {
        // If it is already due, the timer fires at once.
        hold(stored, 'store')
        return
      }
      await obtain(
        (t) => remainingMs(t, now()) > 0 && now() < marginStart(t, deps.refreshMargin),
        'warm-up',
      ).catch(() => {})
    },

    /**
     * New settings (secret, upstream): mint with them at once, without waiting for a mint begun with
     * the old ones (nor for the fleet lock, which such a mint may hold); the old token is served
     * meanwhile. Only a token minted with the new settings does instead (another replica's reload).
     */
    async reconfigure(credential: Credential): Promise<void> {
      configure(credential)
      // A new secret deserves a try now, whatever the brake said about the old one, here or fleet-wide.
      if (failing) setFailing({ ...failing, count: 0, until: 0 })
      await store.setBrake(id, undefined).catch(() => {})
      const previous = held?.token
      const { digest } = settings
      const accept = (t: Token) =>
        t.generation?.settings === digest && (!previous || t.mintedAt > previous.mintedAt)
      await obtain(accept, 'reload', { force: true }).catch(() => {})
    },

    takeStored,

    resync,

    restamp,

    /** No more background refreshes (drain, close). */
    stopTimer(): void {
      arm(false)
    },

    retire(): void {
      retired = true
      this.stopTimer()
    },

    /** Settles when the in-flight mint, if any, does. */
    settled(): Promise<unknown> {
      return Promise.allSettled([inflight?.promise])
    },
  }
}

export type CredentialUnit = ReturnType<typeof createCredentialUnit>
