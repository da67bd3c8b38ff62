import type { Credential } from '../config/types.js'
import type { Brake, StoreState, TokenStore } from '../store/types.js'
import { type FailureReason, type Mint, UpstreamError } from '../upstreams/types.js'
import { failureBrakeMs, fullJitter } from './backoff.js'
import { type Clock, sleepUnlessAborted, systemClock } from './clock.js'
import { BrakeInForce, coordinate, errorText, ShuttingDown } from './coordinator.js'
import { MinTtlUnreachable, MintFailed } from './errors.js'
import type { Logger } from './logger.js'
import { createNotices } from './notices.js'
import { marginStart, refreshAt } from './schedule.js'
import { fingerprint, lifetimeMs, type Token } from './token.js'

/** A token minted this recently is as fresh as upstream makes them: asking again is pointless. */
export const FRESH_MS = 10_000
/** Default min_ttl: the smaller of 60 s and 10 % of the token's lifetime. */
const DEFAULT_MIN_TTL_CAP_S = 60
const ATTEMPTS_PER_MINT = 3
/** A Retry-After longer than this ends the mint; the failure brake then waits it out. */
const MAX_INLINE_WAIT_MS = 5_000
const LOCK_POLL_MS = 250
const WARM_UP_CONCURRENCY = 8
const MIN_REFRESH_INTERVAL_MS = 1_000

export type UpstreamOutcome = 'success' | FailureReason

export interface ManagerEvents {
  upstreamAttempt(credential: Credential, outcome: UpstreamOutcome, durationMs: number): void
}

export interface TokenManagerOptions {
  credentials: Iterable<Credential>
  store: TokenStore
  /** Builds the upstream call for a credential (one attempt, no retries). */
  mintFor: (credential: Credential) => Mint
  log: Logger
  refreshMargin: number
  upstreamTimeoutMs: number
  clock?: Clock
  random?: () => number
  events?: ManagerEvents
}

export type CredentialState = 'pending' | 'ok' | 'failing'

export interface LastError {
  code: 'UPSTREAM_REJECTED' | 'UPSTREAM_UNAVAILABLE'
  message: string
  at: number
}

export interface CredentialStatus {
  credential: Credential
  state: CredentialState
  expiresAt: number | undefined
  refreshedAt: number | undefined
  nextRefreshAt: number | undefined
  lastError: LastError | undefined
}

interface Slot {
  credential: Credential
  mint: Mint
  token: Token | undefined
  refreshedAt: number | undefined
  nextRefreshAt: number | undefined
  cancelTimer: (() => void) | undefined
  inflight: Promise<Token> | undefined
  lastError: LastError | undefined
  failures: number
  /** No upstream call for this credential before this moment (the failure brake). */
  blockedUntil: number
  blockedKind: MintFailed['kind'] | undefined
  /** The held token could not be written to the store; write it when the store is back. */
  unsaved: boolean
  tried: boolean
}

export type TokenManager = ReturnType<typeof createTokenManager>

export function createTokenManager(opts: TokenManagerOptions) {
  const { store, log, refreshMargin, mintFor } = opts
  const clock = opts.clock ?? systemClock
  const random = opts.random ?? Math.random
  const events = opts.events
  const notices = createNotices(clock)
  const slots = new Map<string, Slot>()
  const abort = new AbortController()
  // Longer than the worst mint: every attempt timing out plus the waits between them.
  const lockTtlMs =
    ATTEMPTS_PER_MINT * opts.upstreamTimeoutMs + (ATTEMPTS_PER_MINT - 1) * MAX_INLINE_WAIT_MS + 2_000
  let started = false
  let draining = false
  let warming: Promise<void> | undefined
  let closing = false

  function stopTimers(): void {
    for (const slot of slots.values()) {
      slot.cancelTimer?.()
      slot.cancelTimer = undefined
    }
  }

  const newSlot = (credential: Credential): Slot => ({
    credential,
    mint: mintFor(credential),
    token: undefined,
    refreshedAt: undefined,
    nextRefreshAt: undefined,
    cancelTimer: undefined,
    inflight: undefined,
    lastError: undefined,
    failures: 0,
    blockedUntil: 0,
    blockedKind: undefined,
    unsaved: false,
    tried: false,
  })
  for (const credential of opts.credentials) slots.set(credential.id, newSlot(credential))

  const remainingMs = (token: Token) => token.expiresAt - clock.now()
  const defaultMinTtlS = (token: Token) => Math.min(DEFAULT_MIN_TTL_CAP_S, lifetimeMs(token) / 10_000)
  const meets = (token: Token, minTtlS: number | undefined) => {
    const left = remainingMs(token)
    return left > 0 && left >= (minTtlS ?? defaultMinTtlS(token)) * 1000
  }
  const isDue = (token: Token) => clock.now() >= marginStart(token, refreshMargin)

  function slotOf(id: string): Slot {
    const slot = slots.get(id)
    if (!slot) throw new Error(`unknown credential ${id}`)
    return slot
  }

  // ---- upstream -------------------------------------------------------------------------------

  async function mintWithRetries(slot: Slot): Promise<Token> {
    const { credential } = slot
    for (let attempt = 0; ; attempt++) {
      const startedAt = clock.now()
      const t0 = performance.now()
      try {
        const grant = await slot.mint(abort.signal)
        events?.upstreamAttempt(credential, 'success', performance.now() - t0)
        const now = clock.now()
        // Expiry counts from when we asked, so the broker never believes a token lives longer than it does.
        const token: Token = {
          accessToken: grant.accessToken,
          tokenType: grant.tokenType,
          ...(grant.mageId === undefined ? {} : { mageId: grant.mageId }),
          mintedAt: now,
          expiresAt: startedAt + grant.expiresIn * 1000,
        }
        log.info(
          {
            credential: credential.id,
            token: fingerprint(token.accessToken),
            expiresIn: grant.expiresIn,
            attempt,
          },
          'minted a new token',
        )
        return token
      } catch (err) {
        const failure =
          err instanceof UpstreamError
            ? err
            : new UpstreamError('network', `upstream call failed: ${errorText(err)}`)
        events?.upstreamAttempt(credential, failure.reason, performance.now() - t0)
        const retryAfter = failure.retryAfterMs
        const last =
          failure.rejected ||
          attempt + 1 >= ATTEMPTS_PER_MINT ||
          closing ||
          (retryAfter !== undefined && retryAfter > MAX_INLINE_WAIT_MS)
        log.debug(
          { credential: credential.id, reason: failure.reason, status: failure.status, attempt, last },
          'upstream attempt failed',
        )
        if (last) throw failure
        // Shutdown cuts the wait short rather than holding close() (and the fleet lock) for it.
        await sleepUnlessAborted(clock, retryAfter ?? fullJitter(attempt, random), abort.signal)
        if (closing) throw failure
      }
    }
  }

  const asUpstreamError = (err: unknown): UpstreamError =>
    err instanceof UpstreamError ? err : new UpstreamError('unavailable', `mint failed: ${errorText(err)}`)

  /** The rest after a failed mint: how long nobody (here or, through the store, in the fleet) retries. */
  function brakeAfter(slot: Slot, err: unknown): Brake {
    const failure = asUpstreamError(err)
    const ms = failureBrakeMs(failure.rejected, slot.failures + 1, failure.retryAfterMs)
    return { kind: failure.rejected ? 'rejected' : 'unavailable', until: clock.now() + ms }
  }

  /** Brakes the credential after a failed mint and turns the failure into what callers get. */
  function recordFailure(slot: Slot, err: unknown): MintFailed {
    if (err instanceof ShuttingDown) return new MintFailed('unavailable', err.message, 1000)
    let brake: Brake
    let message: string
    if (err instanceof BrakeInForce) {
      // Another replica just failed: rest with the fleet, without counting it as our own failure.
      brake = { kind: err.brake.kind, until: Math.max(slot.blockedUntil, err.brake.until) }
      message = err.message
    } else {
      const failure = asUpstreamError(err)
      brake = brakeAfter(slot, failure)
      message = failure.message
      slot.failures++
      log.warn(
        {
          credential: slot.credential.id,
          reason: failure.reason,
          status: failure.status,
          failures: slot.failures,
          retryInMs: brake.until - clock.now(),
        },
        'mint failed',
      )
    }
    const upstream = slot.credential.type === 'ims' ? 'Adobe IMS' : 'Adobe Commerce Marketplace (EQP)'
    slot.tried = true
    slot.blockedUntil = brake.until
    slot.blockedKind = brake.kind
    slot.lastError = {
      code: brake.kind === 'rejected' ? 'UPSTREAM_REJECTED' : 'UPSTREAM_UNAVAILABLE',
      message: `${upstream}: ${message}`,
      at: clock.now(),
    }
    schedule(slot)
    return brakeError(slot)
  }

  function brakeError(slot: Slot): MintFailed {
    const waitMs = Math.max(0, slot.blockedUntil - clock.now())
    const message =
      slot.blockedKind === 'rejected'
        ? `Adobe refused the secret of credential "${slot.credential.id}"`
        : `Adobe is unavailable and no token meeting the request is held for credential "${slot.credential.id}"`
    return new MintFailed(slot.blockedKind ?? 'unavailable', message, waitMs)
  }

  // ---- holding and refreshing -----------------------------------------------------------------

  /** Holds `token` unless an equal or later one is already held. Always re-arms the refresh timer. */
  function install(slot: Slot, token: Token, source: 'minted' | 'store'): void {
    const held = slot.token
    if (!held || token.mintedAt > held.mintedAt) {
      slot.token = token
      slot.refreshedAt = clock.now()
      slot.failures = 0
      slot.blockedUntil = 0
      slot.blockedKind = undefined
      slot.lastError = undefined
      if (source === 'store') {
        slot.unsaved = false
        log.debug(
          { credential: slot.credential.id, token: fingerprint(token.accessToken) },
          'took token from store',
        )
      }
    }
    slot.tried = true
    schedule(slot)
  }

  function schedule(slot: Slot): void {
    slot.cancelTimer?.()
    slot.cancelTimer = undefined
    if (closing || draining) return
    const now = clock.now()
    // After a failure, try again once the brake ends (so a blip does not leave the credential
    // "failing" until the next refresh); otherwise at the refresh moment, but never more often
    // than once a second, whatever lifetime upstream grants.
    const due = slot.token && !slot.lastError ? refreshAt(slot.token, refreshMargin, random) : now
    const at = Math.max(due, slot.blockedUntil, now, (slot.refreshedAt ?? 0) + MIN_REFRESH_INTERVAL_MS)
    slot.nextRefreshAt = at
    slot.cancelTimer = clock.schedule(() => backgroundRefresh(slot), at - now)
  }

  function backgroundRefresh(slot: Slot): void {
    slot.cancelTimer = undefined
    if (closing || slots.get(slot.credential.id) !== slot) return
    if (clock.now() < slot.blockedUntil) {
      schedule(slot)
      return
    }
    const held = slot.token
    const accept = (t: Token) => remainingMs(t) > 0 && !isDue(t) && (!held || t.mintedAt > held.mintedAt)
    obtain(slot, accept).catch(() => {
      // Recorded and rescheduled by recordFailure; callers are served from memory meanwhile.
    })
  }

  /**
   * Gets a new token for the slot: one shared run per credential in this process (single-flight),
   * one mint across the fleet (coordinate). `accept` says whether a token another replica just
   * stored does the job.
   */
  function obtain(slot: Slot, accept: (token: Token) => boolean): Promise<Token> {
    if (slot.inflight) return slot.inflight
    if (clock.now() < slot.blockedUntil) return Promise.reject(brakeError(slot))
    if (closing) return Promise.reject(new MintFailed('unavailable', 'the broker is shutting down', 1000))
    const run = async () => {
      try {
        const outcome = await coordinate({
          store,
          id: slot.credential.id,
          accept,
          mint: () => mintWithRetries(slot),
          brakeFor: (err) => brakeAfter(slot, err),
          signal: abort.signal,
          clock,
          notices,
          log,
          lockTtlMs,
          pollMs: LOCK_POLL_MS,
        })
        install(slot, outcome.token, outcome.minted ? 'minted' : 'store')
        if (outcome.minted && slot.token === outcome.token) slot.unsaved = !outcome.saved
        return outcome.token
      } catch (err) {
        throw recordFailure(slot, err)
      }
    }
    const inflight = run().finally(() => {
      slot.inflight = undefined
    })
    slot.inflight = inflight
    return inflight
  }

  async function warm(slot: Slot): Promise<void> {
    const stored = await store.get(slot.credential.id).catch(() => undefined)
    if (stored && remainingMs(stored) > 0) {
      // A restarted replica takes what the fleet holds; if it is already due, the timer fires at once.
      install(slot, stored, 'store')
      return
    }
    await obtain(slot, (t) => remainingMs(t) > 0 && !isDue(t)).catch(() => {})
  }

  async function onStoreToken(id: string): Promise<void> {
    notices.notify(id)
    const slot = slots.get(id)
    if (!slot || closing) return
    const stored = await store.get(id).catch(() => undefined)
    if (stored && remainingMs(stored) > 0 && (!slot.token || stored.mintedAt > slot.token.mintedAt)) {
      install(slot, stored, 'store')
    }
  }

  /** The store is back: write what it missed, and take what other replicas stored meanwhile. */
  async function onStoreState(state: StoreState): Promise<void> {
    if (state !== 'ok' || closing) return
    for (const slot of slots.values()) {
      const id = slot.credential.id
      if (slot.unsaved && slot.token && remainingMs(slot.token) > 0) {
        const token = slot.token
        try {
          const written = await store.put(id, token)
          if (slot.token === token) slot.unsaved = false
          if (written) log.info({ credential: id }, 'wrote the held token to the store after it came back')
          // Fenced: another replica stored a newer token meanwhile; take it.
          else await onStoreToken(id)
        } catch {
          // Still down; the next 'ok' tries again.
        }
      } else {
        await onStoreToken(id)
      }
    }
  }

  store.onToken((id) => {
    void onStoreToken(id)
  })
  store.onState((state) => {
    void onStoreState(state)
  })

  return {
    /** Warm-up: loads or mints every credential's token. Resolves once each has been tried. */
    start(): Promise<void> {
      warming ??= (async () => {
        const queue = [...slots.values()]
        const worker = async () => {
          for (let slot = queue.shift(); slot; slot = queue.shift()) await warm(slot)
        }
        await Promise.all(Array.from({ length: Math.min(WARM_UP_CONCURRENCY, queue.length) }, worker))
        started = true
      })()
      return warming
    },

    get started(): boolean {
      return started
    },

    has: (id: string): boolean => slots.has(id),

    /**
     * The hot path: the held token when it has at least `minTtlS` seconds left (default: the
     * smaller of 60 s and 10 % of its lifetime). No I/O, no promise.
     */
    peek(id: string, minTtlS?: number): Token | undefined {
      const token = slots.get(id)?.token
      return token && meets(token, minTtlS) ? token : undefined
    },

    /** A token with at least `minTtlS` seconds left, minting one first if the held token has less. */
    async get(id: string, minTtlS?: number): Promise<Token> {
      const slot = slotOf(id)
      const held = slot.token
      if (held && meets(held, minTtlS)) return held
      if (held && clock.now() - held.mintedAt < FRESH_MS) throw unreachable(minTtlS)
      const accept = (t: Token) => meets(t, minTtlS)
      let token: Token
      try {
        token = await obtain(slot, accept)
        // Joined a mint started for another reason: its token may still fall short; one more go.
        if (!meets(token, minTtlS) && clock.now() - token.mintedAt >= FRESH_MS)
          token = await obtain(slot, accept)
      } catch (err) {
        const current = slot.token
        if (minTtlS === undefined && current && meets(current, undefined)) return current
        throw err
      }
      if (!meets(token, minTtlS)) throw unreachable(minTtlS)
      return token
    },

    /**
     * A fresh token. With `rejectedToken`: if it is no longer current, the current one (no mint).
     * Without: a token minted within the last 10 s is fresh enough (debounce).
     */
    async refresh(id: string, rejectedToken?: string): Promise<Token> {
      const slot = slotOf(id)
      const held = slot.token
      let accept: (t: Token) => boolean
      if (rejectedToken !== undefined) {
        if (held && held.accessToken !== rejectedToken && remainingMs(held) > 0) return held
        accept = (t) => t.accessToken !== rejectedToken && remainingMs(t) > 0
      } else {
        if (held && clock.now() - held.mintedAt < FRESH_MS && remainingMs(held) > 0) return held
        accept = (t) => clock.now() - t.mintedAt < FRESH_MS && remainingMs(t) > 0
      }
      let token = await obtain(slot, accept)
      // Joined a mint that another need started (say the background refresh adopting a stored token).
      if (!accept(token)) token = await obtain(slot, accept)
      return token
    },

    status(id: string): CredentialStatus {
      const slot = slotOf(id)
      const token = slot.token
      const valid = token !== undefined && remainingMs(token) > 0
      const state: CredentialState = !slot.tried ? 'pending' : slot.lastError || !valid ? 'failing' : 'ok'
      return {
        credential: slot.credential,
        state,
        expiresAt: token?.expiresAt,
        refreshedAt: slot.refreshedAt,
        nextRefreshAt: slot.cancelTimer ? slot.nextRefreshAt : undefined,
        lastError: slot.lastError,
      }
    },

    ids(): IterableIterator<string> {
      return slots.keys()
    },

    /**
     * Applies a reloaded configuration: new credentials are warmed, removed ones dropped, and a
     * credential whose secret or upstream changed mints with the new settings at once (the old
     * token is served until the new one arrives).
     */
    async reconfigure(credentials: Iterable<Credential>): Promise<void> {
      const next = new Map([...credentials].map((c) => [c.id, c]))
      for (const [id, slot] of slots) {
        if (!next.has(id)) {
          slot.cancelTimer?.()
          slots.delete(id)
          log.info({ credential: id }, 'credential removed')
        }
      }
      const work: Promise<unknown>[] = []
      for (const [id, credential] of next) {
        const slot = slots.get(id)
        if (!slot) {
          const added = newSlot(credential)
          slots.set(id, added)
          log.info({ credential: id }, 'credential added')
          work.push(warm(added))
        } else if (!sameCredential(slot.credential, credential)) {
          slot.credential = credential
          slot.mint = mintFor(credential)
          log.info({ credential: id }, 'credential changed: minting with the new settings')
          work.push(
            (slot.inflight ?? Promise.resolve())
              .catch(() => {})
              .then(async () => {
                // A new secret deserves a try now, whatever the brake said about the old one, here or
                // fleet-wide, including a brake set by the old-settings mint that was just in flight.
                slot.blockedUntil = 0
                slot.failures = 0
                await store.setBrake(id, undefined).catch(() => {})
                // Read after the in-flight mint settles: a token it got with the old settings must not count.
                const held = slot.token
                return obtain(slot, (t) => !held || t.mintedAt > held.mintedAt)
              })
              .catch(() => {}),
          )
        }
      }
      await Promise.all(work)
    },

    /**
     * Shutdown has begun: no more background refreshes. Callers are still served, and may still
     * cause a mint, while in-flight requests finish.
     */
    drain(): void {
      draining = true
      stopTimers()
    },

    /** Stops timers and in-flight upstream calls; locks are released as their mints unwind. */
    async close(): Promise<void> {
      closing = true
      stopTimers()
      abort.abort()
      await Promise.allSettled([...slots.values()].map((s) => s.inflight))
    },
  }
}

function unreachable(minTtlS: number | undefined): MinTtlUnreachable {
  return new MinTtlUnreachable(
    minTtlS === undefined
      ? 'the held token is as fresh as upstream grants, yet shorter than the default min_ttl'
      : `no token upstream grants can have ${minTtlS} seconds left`,
  )
}

function sameCredential(a: Credential, b: Credential): boolean {
  return JSON.stringify(a) === JSON.stringify(b)
}
