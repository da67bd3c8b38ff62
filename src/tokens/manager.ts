import { setMaxListeners } from 'node:events'
import { type Clock, isFleetClock, systemClock } from '../core/clock.js'
import { type Credential, secretsOf, settingsDigest } from '../core/credential.js'
import type { Mint } from '../core/grant.js'
import type { Logger } from '../core/logger.js'
import type { TokenStore } from '../core/store.js'
import type { Token } from '../core/token.js'
import { noopTracer, type Tracer } from '../core/tracer.js'
import { type ManagerEvents, worstMintMs } from './attempts.js'
import { createNotices } from './notices.js'
import { type CredentialStatus, type CredentialUnit, createCredentialUnit } from './unit.js'

export type { ManagerEvents, UpstreamOutcome } from './attempts.js'
export { FRESH_MS } from './freshness.js'
export type { CredentialState, CredentialStatus } from './unit.js'

const WARM_UP_CONCURRENCY = 8
/** The fleet lock's lease: renewed every third of it while held, so a dead holder's ends this soon. */
export const LOCK_LEASE_MS = 5_000

export interface TokenManagerOptions {
  credentials: Iterable<Credential>
  store: TokenStore
  /** Builds the upstream call for a credential (one attempt, no retries). */
  mintFor: (credential: Credential) => Mint
  log: Logger
  refreshMargin: number
  upstreamTimeoutMs: number
  /**
   * The time tokens are stamped and judged on. A fleet clock (set to Redis TIME) may move: what was
   * stamped on its old reading moves with it (see the units' restamp).
   */
  clock?: Clock
  random?: () => number
  events?: ManagerEvents
  /** Spans for each mint and each upstream request (default: none). */
  tracer?: Tracer
}

/** What a reconfigure changed, by credential id. */
export interface Changes {
  added: string[]
  removed: string[]
  changed: string[]
}

export type TokenManager = ReturnType<typeof createTokenManager>

/**
 * The registry of credential units: warm-up, reconfigure, store events, drain and close. Serving
 * and refreshing are each unit's own (see unit.ts).
 */
export function createTokenManager(opts: TokenManagerOptions) {
  const { store, log } = opts
  const abort = new AbortController()
  // Every credential's mint listens on it, and may wait its turn for an upstream slot meanwhile.
  setMaxListeners(0, abort.signal)
  let draining = false
  let started = false
  let warming: Promise<void> | undefined
  const clock = opts.clock ?? systemClock
  const deps = {
    store,
    mintFor: opts.mintFor,
    clock,
    random: opts.random ?? Math.random,
    log,
    events: opts.events,
    tracer: opts.tracer ?? noopTracer,
    notices: createNotices(clock),
    refreshMargin: opts.refreshMargin,
    lockTtlMs: LOCK_LEASE_MS,
    maxMintMs: (credential: Credential) => worstMintMs(opts.upstreamTimeoutMs, secretsOf(credential).length),
    signal: abort.signal,
    draining: () => draining,
  }
  const units = new Map<string, CredentialUnit>()
  /** Removed credentials' in-flight mints, kept until they settle so close() waits for them too. */
  const retiring = new Set<Promise<unknown>>()
  for (const credential of opts.credentials) units.set(credential.id, createCredentialUnit(credential, deps))

  function unitOf(id: string): CredentialUnit {
    const unit = units.get(id)
    if (!unit) throw new Error(`unknown credential ${id}`)
    return unit
  }

  store.onToken((id) => {
    const unit = units.get(id)
    if (unit) void unit.takeStored()
    else deps.notices.notify(id)
  })
  store.onState((state) => {
    if (state !== 'ok' || abort.signal.aborted) return
    // The store is back: write what it missed, and take what other replicas stored meanwhile.
    void (async () => {
      for (const unit of units.values()) await unit.resync()
    })()
  })
  // The store measures the fleet clock before it reports ok, so the units have moved their stamps
  // by the time the resync writes them back.
  const stopRestamping = isFleetClock(clock)
    ? clock.onShift((deltaMs) => {
        for (const unit of units.values()) unit.restamp(deltaMs)
      })
    : () => {}

  /**
   * Warms `list`: what the fleet holds for all of them in a few round trips (not one each; when that
   * fails, or for the units whose part of the store did not answer, each unit asks on its own and
   * carries on from there if Redis is down), then a few units at a time, so that this replica holds
   * only a few fleet locks while its mints queue for upstream.
   * Each replica goes through them in its own order: a fleet starting together shares the minting
   * instead of waiting in turn on the locks of whichever replica came first.
   */
  async function warmAll(list: CredentialUnit[]): Promise<void> {
    const stored = await store.getMany(list.map((unit) => unit.credential.id)).catch(() => undefined)
    const queue = shuffled(list, deps.random)
    const worker = async () => {
      for (let unit = queue.pop(); unit; unit = queue.pop()) {
        const id = unit.credential.id
        const known = stored && !stored.unknown.has(id)
        await unit.warm(known ? async () => stored.get(id) : undefined)
      }
    }
    await Promise.all(Array.from({ length: Math.min(WARM_UP_CONCURRENCY, queue.length) }, worker))
  }

  return {
    /** Warm-up: loads or mints every credential's token. Resolves once each has been tried. */
    start(): Promise<void> {
      warming ??= warmAll([...units.values()]).then(() => {
        started = true
      })
      return warming
    },

    get started(): boolean {
      return started
    },

    has: (id: string): boolean => units.has(id),

    /** The settings the credential's unit mints with now (a reload swaps them in reconfigure). */
    credential: (id: string): Credential | undefined => units.get(id)?.credential,

    /**
     * The hot path: the held token when it has at least `minTtlS` seconds left (default: the
     * smaller of 60 s and 10 % of its lifetime). No I/O, no promise.
     */
    peek(id: string, minTtlS?: number): Token | undefined {
      return units.get(id)?.peek(minTtlS)
    },

    /** A token with at least `minTtlS` seconds left, minting one first if the held token has less. */
    async get(id: string, minTtlS?: number): Promise<Token> {
      return unitOf(id).get(minTtlS)
    },

    /**
     * A fresh token. With `rejectedToken`: if it is no longer current, the current one (no mint).
     * Without: a token minted within the last 10 s is fresh enough (debounce).
     */
    async refresh(id: string, rejectedToken?: string, client?: string): Promise<Token> {
      return unitOf(id).refresh(rejectedToken, client)
    },

    status(id: string): CredentialStatus {
      return unitOf(id).status()
    },

    ids(): IterableIterator<string> {
      return units.keys()
    },

    /**
     * Applies a reloaded configuration, and is the one place that decides whether a credential
     * changed: new credentials are warmed, removed ones dropped, and a credential whose secret or
     * upstream changed mints with the new settings at once (the old token is served until then).
     */
    async reconfigure(credentials: Iterable<Credential>): Promise<Changes> {
      const next = new Map([...credentials].map((c) => [c.id, c]))
      const changes: Changes = { added: [], removed: [], changed: [] }
      for (const [id, unit] of units) {
        if (next.has(id)) continue
        unit.retire()
        units.delete(id)
        const settling = unit.settled().finally(() => retiring.delete(settling))
        retiring.add(settling)
        changes.removed.push(id)
        log.info({ credential: id }, 'credential removed')
      }
      const work: Promise<void>[] = []
      const added: CredentialUnit[] = []
      for (const [id, credential] of next) {
        const unit = units.get(id)
        if (!unit) {
          const fresh = createCredentialUnit(credential, deps)
          units.set(id, fresh)
          added.push(fresh)
          changes.added.push(id)
          log.info({ credential: id }, 'credential added')
        } else if (!sameCredential(unit.credential, credential)) {
          changes.changed.push(id)
          log.info({ credential: id }, 'credential changed: minting with the new settings')
          work.push(unit.reconfigure(credential))
        }
      }
      await Promise.all([...work, warmAll(added)])
      return changes
    },

    /**
     * Shutdown has begun: no more background refreshes. Callers are still served, and may still
     * cause a mint, while in-flight requests finish.
     */
    drain(): void {
      draining = true
      for (const unit of units.values()) unit.stopTimer()
    },

    /** Stops timers and in-flight upstream calls; locks are released as their mints unwind. */
    async close(): Promise<void> {
      abort.abort()
      stopRestamping()
      for (const unit of units.values()) unit.stopTimer()
      await Promise.all([...[...units.values()].map((unit) => unit.settled()), ...retiring])
    },
  }
}

const sameCredential = (a: Credential, b: Credential): boolean => settingsDigest(a) === settingsDigest(b)

/** A copy of `list` in random order (Fisher-Yates). */
function shuffled<T>(list: readonly T[], random: () => number): T[] {
  const out = [...list]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    const a = out[i] as T
    out[i] = out[j] as T
    out[j] = a
  }
  return out
}
