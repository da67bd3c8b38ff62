import type { BrokerApi, BrokerToken } from './broker-api.js'
import { isOutage } from './errors.js'

/** The broker's default minimum: the smaller of 60 s and 10 % of the token's lifetime. */
const DEFAULT_MIN_CAP_MS = 60_000
const DEFAULT_MIN_SHARE = 0.1
/** Background refreshes of one credential are at least this far apart, whatever they return. */
const BACKGROUND_SPACING_MS = 5_000

interface Held {
  token: BrokerToken
  /** Local clock, from when the request was sent: never later than the broker's own expiry. */
  expiresAt: number
  /** As first seen (the `expires_in` of the first answer carrying it): at most the real lifetime. */
  lifetimeMs: number
}

interface InFlight {
  promise: Promise<BrokerToken>
  /** A background refresh: its failure is nobody's error, so callers who joined it ask again. */
  background: boolean
}

const defaultMinMs = (h: Held): number => Math.min(DEFAULT_MIN_CAP_MS, DEFAULT_MIN_SHARE * h.lifetimeMs)

/**
 * Everything the client knows of one credential: the held token, the one broker request in
 * flight, the one refresh of a rejected token in flight, and when a background refresh may run.
 */
export class CredentialTokens {
  #held: Held | undefined
  #inFlight: InFlight | undefined
  #rejecting: { accessToken: string; promise: Promise<BrokerToken> } | undefined
  /** The last token reported rejected: a late answer carrying it never replaces a newer one. */
  #lastRejected: string | undefined
  #backgroundNotBefore = 0

  constructor(
    private readonly credential: string,
    private readonly api: BrokerApi,
    private readonly now: () => number,
  ) {}

  /** The held token when it meets the minimum (seconds; default: the broker's), else one from the broker. */
  token(minTtl?: number): Promise<BrokerToken> {
    const served = this.#serve(minTtl)
    return served !== undefined ? Promise.resolve(served) : this.#obtain(minTtl)
  }

  /** The held token when it meets the default minimum, without waiting (the hot path of the interceptor). */
  cached(): BrokerToken | undefined {
    return this.#serve(undefined)
  }

  /** Adobe refused `accessToken`: one refresh per rejected token, however many callers report it. */
  rejected(accessToken: string): Promise<BrokerToken> {
    const h = this.#held
    if (h !== undefined && h.token.access_token !== accessToken && h.expiresAt > this.now()) {
      return Promise.resolve(h.token) // already replaced: nothing to ask
    }
    if (this.#rejecting?.accessToken === accessToken) return this.#rejecting.promise
    this.#lastRejected = accessToken
    const sentAt = this.now()
    const promise = this.api.refresh(this.credential, accessToken).then((t) => this.#keep(t, sentAt))
    const entry = { accessToken, promise }
    this.#rejecting = entry
    const clear = () => {
      if (this.#rejecting === entry) this.#rejecting = undefined
    }
    promise.then(clear, clear)
    return promise
  }

  #serve(minTtl: number | undefined): BrokerToken | undefined {
    const h = this.#held
    if (h === undefined) return undefined
    const now = this.now()
    const left = h.expiresAt - now
    const floor = defaultMinMs(h)
    if (left <= 0 || left < (minTtl === undefined ? floor : minTtl * 1000)) return undefined
    // Ahead of time, so no caller ever waits for the token to fall below the default.
    if (left < 2 * floor) this.#refreshInBackground(h, now)
    return h.token
  }

  async #obtain(minTtl: number | undefined): Promise<BrokerToken> {
    // Join the request in flight (twice at most: it may have asked for less than this caller needs).
    for (let joined = 0; this.#inFlight !== undefined && joined < 2; joined++) {
      const shared = this.#inFlight
      try {
        await shared.promise
      } catch (err) {
        if (!shared.background) return this.#fallback(err, minTtl)
      }
      const served = this.#serve(minTtl)
      if (served !== undefined) return served
    }
    const sentAt = this.now()
    const promise = this.api.get(this.credential, minTtl).then((t) => this.#keep(t, sentAt))
    const entry: InFlight = { promise, background: false }
    this.#inFlight = entry
    try {
      await promise
    } catch (err) {
      return this.#fallback(err, minTtl)
    } finally {
      if (this.#inFlight === entry) this.#inFlight = undefined
    }
    return this.#serve(minTtl) ?? promise
  }

  /** While the broker is down, a held token that is still valid serves callers who asked no minimum. */
  #fallback(err: unknown, minTtl: number | undefined): BrokerToken {
    const h = this.#held
    if (minTtl === undefined && isOutage(err) && h !== undefined && h.expiresAt > this.now()) return h.token
    throw err
  }

  #refreshInBackground(h: Held, now: number): void {
    if (this.#inFlight !== undefined || now < this.#backgroundNotBefore) return
    this.#backgroundNotBefore = now + BACKGROUND_SPACING_MS
    // Ask for a token well clear of this window (three times the default, not two: the broker's
    // whole seconds and the request's own time must not land the answer back inside it); the
    // broker mints one if it must.
    const minTtl = Math.ceil((3 * defaultMinMs(h)) / 1000)
    const promise = this.api.get(this.credential, minTtl).then((t) => this.#keep(t, now))
    const entry: InFlight = { promise, background: true }
    this.#inFlight = entry
    const clear = () => {
      if (this.#inFlight === entry) this.#inFlight = undefined
    }
    promise.then(clear, clear) // a failure waits for the next call; the held token is still served
  }

  /** The one place the held token is written. */
  #keep(t: BrokerToken, sentAt: number): BrokerToken {
    const h = this.#held
    if (t.access_token === this.#lastRejected && h !== undefined) return h.token
    const expiresAt = sentAt + t.expires_in * 1000
    if (h !== undefined && h.token.access_token === t.access_token) {
      h.expiresAt = Math.max(h.expiresAt, expiresAt)
      return h.token
    }
    this.#held = { token: t, expiresAt, lifetimeMs: t.expires_in * 1000 }
    return t
  }
}
