import { onTestFinished } from 'vitest'
import { type ImsCredential, secretsOf } from '../../src/core/credential.js'
import { UpstreamError } from '../../src/core/failure.js'
import type { Grant, Mint } from '../../src/core/grant.js'
import { type Logger, silentLogger } from '../../src/core/logger.js'
import { createMemoryStore } from '../../src/store/memory.js'
import { createTokenManager } from '../../src/tokens/manager.js'
import { imsCredential } from '../helpers/credentials.js'
import { createManualClock, type ManualClock } from '../helpers/manual-clock.js'

export const SECOND = 1000
export const MINUTE = 60 * SECOND

/** What a fake upstream does with one call: answer with a grant, or reject. */
type Responder = (call: number, signal: AbortSignal | undefined) => Promise<Grant>

export interface Held {
  /** Answers the held call with a grant of `expiresIn` seconds (default: the upstream's lifetime). */
  grant(expiresIn?: number): void
  fail(err: UpstreamError): void
}

/**
 * A fake upstream for one secret. Every call is counted and timed; it answers from a queue of
 * scripted responses first, then with its standing behaviour (by default: a grant). Tokens are
 * named `<secret>-<call number>`, so a test can tell which call produced what it was served.
 */
export class FakeUpstream {
  readonly callTimes: number[] = []
  private readonly queue: Responder[] = []
  private standing: Responder

  constructor(
    readonly name: string,
    private readonly clock: ManualClock,
    /** Lifetime of granted tokens, in seconds. */
    public lifetimeS = 3600,
  ) {
    this.standing = (call) => Promise.resolve(this.grantFor(call))
  }

  get calls(): number {
    return this.callTimes.length
  }

  readonly mint: Mint = (_secret, signal) => {
    this.callTimes.push(this.clock.now())
    const respond = this.queue.shift() ?? this.standing
    return respond(this.calls, signal)
  }

  /** From now on every call answers with a grant of `expiresIn` seconds. */
  succeed(expiresIn = this.lifetimeS): this {
    this.lifetimeS = expiresIn
    this.standing = (call) => Promise.resolve(this.grantFor(call))
    return this
  }

  /** From now on every call fails with `make()`. */
  failWith(make: () => UpstreamError): this {
    this.standing = () => Promise.reject(make())
    return this
  }

  /** The next calls (one per error) fail with these errors, then the standing behaviour resumes. */
  thenFail(...errors: UpstreamError[]): this {
    for (const err of errors) this.queue.push(() => Promise.reject(err))
    return this
  }

  /**
   * The next call stays pending until the test answers it; an abort rejects it like a real request
   * (with the abort's reason), unless `deaf`: a request that does not stop when asked to.
   */
  hold(opts: { deaf?: boolean } = {}): Held {
    let settle: Held | undefined
    this.queue.push(
      (call, signal) =>
        new Promise<Grant>((resolve, reject) => {
          if (!opts.deaf) signal?.addEventListener('abort', () => reject(signal.reason), { once: true })
          settle = {
            grant: (expiresIn = this.lifetimeS) => resolve({ ...this.grantFor(call), expiresIn }),
            fail: reject,
          }
        }),
    )
    return {
      grant: (expiresIn) => {
        if (!settle) throw new Error(`${this.name}: the held call has not been made yet`)
        settle.grant(expiresIn)
      },
      fail: (err) => {
        if (!settle) throw new Error(`${this.name}: the held call has not been made yet`)
        settle.fail(err)
      },
    }
  }

  private grantFor(call: number): Grant {
    return { accessToken: `${this.name}-${call}`, tokenType: 'bearer', expiresIn: this.lifetimeS }
  }
}

export const errors = {
  unavailable: (retryAfterMs?: number) =>
    new UpstreamError('unavailable', 'upstream answered 503', {
      status: 503,
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    }),
  rejected: () => new UpstreamError('rejected', 'upstream refused the secret (401)', { status: 401 }),
  malformed: () => new UpstreamError('malformed', 'upstream answer is not JSON'),
  timeout: () => new UpstreamError('timeout', 'no answer within 10000 ms'),
}

/** An IMS credential whose secret names its fake upstream (default: the id). */
export const credential = (id: string, secret = id): ImsCredential =>
  imsCredential({
    id,
    environment: 'production',
    clientId: `client-${id}`,
    clientSecrets: [secret],
    scopes: ['openid'],
  })

export interface SetupOptions {
  /** Credential ids (or full credentials); default one credential, "ims". */
  credentials?: Array<string | ImsCredential>
  random?: () => number
  refreshMargin?: number
  /** Lifetime, in seconds, that every fake upstream grants unless told otherwise. */
  lifetimeS?: number
  /** Where the manager logs (default: nowhere). */
  log?: Logger
}

/** A token manager on a manual clock and the memory store, with one fake upstream per secret. */
export function setup(opts: SetupOptions = {}) {
  const clock = createManualClock()
  const store = createMemoryStore({ clock })
  const upstreams = new Map<string, FakeUpstream>()
  /** The fake upstream that answers for `secret` (a credential's id unless given another secret). */
  const upstream = (secret: string): FakeUpstream => {
    let fake = upstreams.get(secret)
    if (!fake) {
      fake = new FakeUpstream(secret, clock, opts.lifetimeS)
      upstreams.set(secret, fake)
    }
    return fake
  }
  const credentials = (opts.credentials ?? ['ims']).map((c) => (typeof c === 'string' ? credential(c) : c))
  const manager = createTokenManager({
    credentials,
    store,
    // Each secret of a credential's list answers through its own fake upstream.
    mintFor: (c) => (secret, signal) => upstream(secretsOf(c)[secret] ?? '').mint(secret, signal),
    log: opts.log ?? silentLogger,
    refreshMargin: opts.refreshMargin ?? 0.2,
    upstreamTimeoutMs: 10_000,
    clock,
    random: opts.random ?? (() => 0),
  })

  /** Flushes the clock and returns what `p` settled with; fails fast if it is still pending. */
  async function settled<T>(p: Promise<T>): Promise<T> {
    let done = false
    p.then(
      () => {
        done = true
      },
      () => {
        done = true
      },
    )
    await clock.flush()
    if (!done) throw new Error('the promise is still pending after the clock was flushed')
    return p
  }

  /** Flushes the clock and returns the error `p` rejected with; fails if it resolved or is pending. */
  async function failure(p: Promise<unknown>): Promise<unknown> {
    try {
      await settled(p)
    } catch (err) {
      return err
    }
    throw new Error('expected the promise to reject, but it resolved')
  }

  /** Flushes the clock once and returns the errors every one of `ps` rejected with. */
  async function failures(ps: Promise<unknown>[]): Promise<unknown[]> {
    const watched = ps.map(watch)
    await clock.flush()
    return watched.map((w, i) => {
      if (!w.settled) throw new Error(`call ${i} is still pending after the clock was flushed`)
      if (!('error' in w)) throw new Error(`call ${i} resolved; expected it to reject`)
      return w.error
    })
  }

  /** Starts the manager and lets warm-up finish (no clock time passes). */
  async function started(): Promise<void> {
    await settled(manager.start())
  }

  onTestFinished(async () => {
    const closed = manager.close()
    // A mint may be waiting out a retry delay on this clock: let it unwind.
    await clock.runAll(1000)
    await closed
  })
  return { clock, store, manager, upstream, settled, failure, failures, started }
}

/** A started manager whose first token (`<id>-1`) is `ageMs` old. */
export async function withHeldToken(ageMs = 20 * SECOND, opts: SetupOptions = {}) {
  const t = setup(opts)
  await t.started()
  await t.clock.advance(ageMs)
  return t
}

/** Tracks a promise's outcome without awaiting it (for calls left pending while the clock moves). */
export function watch<T>(p: Promise<T>) {
  const w: { settled: boolean; value?: T; error?: unknown } = { settled: false }
  p.then(
    (value) => {
      w.settled = true
      w.value = value
    },
    (error: unknown) => {
      w.settled = true
      w.error = error
    },
  )
  return w
}
