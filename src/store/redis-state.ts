import { ReplyError } from 'ioredis'
import type { Clock } from '../core/clock.js'
import type { Logger } from '../core/logger.js'
import type { StoreState } from '../core/store.js'
import { classifyRefusal, type Refusal } from './redis-refusal.js'

/** While down, how often the store checks whether Redis serves again (besides at each reconnect). */
const CHECK_EVERY_MS = 1000

/**
 * Error replies by which Redis says "not now" rather than "not this command": the cluster or the
 * node cannot serve yet (a failover under way, a replica not yet promoted, a dataset loading).
 */
const NOT_NOW = /^(CLUSTERDOWN|TRYAGAIN|LOADING|MASTERDOWN|READONLY|MOVED|ASK|BUSY)\b/

/**
 * Whether a command's failure says Redis cannot serve it now. Anything but an error reply comes
 * from the client side: the connection closed or refused, no answer in time, the offline queue
 * off, redirections exhausted, retries spent. A reply like WRONGTYPE or NOPERM is Redis serving,
 * and refusing this one command.
 */
export function cannotServe(err: unknown): boolean {
  if (!(err instanceof Error)) return false
  return !(err instanceof ReplyError) || NOT_NOW.test(err.message)
}

/** An error's message, with the node's own reason when a Cluster could map no node. */
export function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err)
  const last = (err as { lastNodeError?: unknown }).lastNodeError
  return last instanceof Error ? `${err.message} Last error: ${last.message}` : err.message
}

export interface RedisStateOptions {
  /** The connections are up: commands and the notification subscription. */
  connected: () => boolean
  /**
   * What must pass before the store says ok: rejects while Redis cannot serve. Given the keys whose
   * commands failed since the last check (one per node that served them), so that on a Cluster it
   * reaches the very masters that failed.
   */
  check: (keys: readonly string[]) => Promise<void>
  /** Which node serves `key` now (one name for the whole store when it is not a Cluster). */
  nodeOf: (key: string) => string
  clock: Clock
  log: Logger
  /** The Redis named in logs, without a password. */
  where: string
}

export interface RedisState {
  current(): StoreState
  /** Calls `listener` with each change; returns a function that stops the calls. */
  listen(listener: (state: StoreState) => void): () => void
  /** Resolves once the store is ok, Redis refused it, or `timeoutMs` passed; never rejects. */
  settled(timeoutMs: number): Promise<void>
  /** The refusal seen since the store was last ok, if any: a setting to fix, not an outage. */
  refusal(): Refusal | undefined
  /** A connection event (ready, closed, subscribed): judged again. */
  update(): void
  /** A connection's 'error' event: a refusal is logged as one, an outage once, the rest at debug. */
  connectionError(err: Error): void
  /** The subscription failed; `connectionUp`: while its connection was up (then it was refused). */
  subscribeFailed(err: Error, connectionUp: boolean): void
  /** `command` as it is; a failure saying Redis cannot serve `key` now turns the store down. */
  watch<T>(key: string, command: Promise<T>): Promise<T>
  /** A command on `key` failed with `err`: when Redis cannot serve it now, the store is down. */
  note(key: string, err: unknown): void
  /** No more changes, checks or calls; the state is down from now on. */
  close(): void
}

/**
 * The Redis store's state, from what its connections and its commands see. A connection down, or
 * a command failing because Redis cannot serve it, turns it `down` at once: on a Cluster a master
 * may die while the connection object stays ready, and only the commands routed to its slots tell.
 * It is `ok` again only after a check passes (run at each reconnect, and regularly while down),
 * so that a transition to `ok` means the store serves again: callers write back then what they
 * could not write meanwhile.
 */
export function createRedisState(o: RedisStateOptions): RedisState {
  let state: StoreState = 'down'
  let closed = false
  let lastError = ''
  /** The latest connection error was a refusal (a setting to fix), not an outage. */
  let refused: Refusal | undefined
  // One warn line per outage (including "unreachable from the start"), not one per retry.
  let downLogged = false
  const listeners = new Set<(s: StoreState) => void>()
  /** Whoever waits for the store to be ok (or refused). */
  const waiters = new Set<() => void>()
  // The key of a command that failed, by the node that served it. A new object per failure, so a
  // check begun before it does not clear it.
  const failed = new Map<string, { key: string }>()
  let checking = false
  let cancelTimer: (() => void) | undefined

  const set = (next: StoreState): void => {
    state = next
    if (next === 'ok') {
      downLogged = false
      lastError = ''
      refused = undefined
      o.log.info({ redis: o.where }, 'redis store connected')
      for (const wake of [...waiters]) wake()
    } else {
      downLogged = true
      o.log.warn({ redis: o.where, err: lastError }, 'redis store down; serving from memory, reconnecting')
    }
    for (const listener of [...listeners]) {
      try {
        listener(next)
      } catch {
        // A listener's failure must not break the connection handling.
      }
    }
  }

  const update = (): void => {
    if (closed) return
    if (state === 'ok' && (!o.connected() || failed.size > 0)) set('down')
    if (state === 'ok') return
    cancelTimer ??= o.clock.schedule(() => {
      cancelTimer = undefined
      update()
    }, CHECK_EVERY_MS)
    if (o.connected()) void check()
  }

  const check = async (): Promise<void> => {
    if (checking) return
    checking = true
    const tried = [...failed]
    try {
      await o.check(tried.map(([, f]) => f.key))
      for (const [node, f] of tried) if (failed.get(node) === f) failed.delete(node)
      if (!closed && state === 'down' && o.connected() && failed.size === 0) {
        cancelTimer?.()
        cancelTimer = undefined
        set('ok')
      }
    } catch (err) {
      lastError = errorText(err)
      o.log.debug({ redis: o.where, err: lastError }, 'redis store cannot serve yet; checking again')
    } finally {
      checking = false
    }
  }

  /** Notes a refusal; true when it is the first since the store was last ok. */
  const noteRefusal = (refusal: Refusal | undefined): boolean => {
    if (state !== 'down') return false
    const first = refusal !== undefined && refused === undefined
    // Kept until ok: a refusal is often followed by a mere "connection closed".
    refused = refusal ?? refused
    // Whoever waits learns of a refusal at once: waiting longer would not cure it.
    if (refused) for (const wake of [...waiters]) wake()
    return first
  }
  const logRefusal = (err: string, refusal: Refusal) =>
    o.log.error(
      { redis: o.where, err, refused: refusal.kind },
      'redis refused this replica; check its Redis settings',
    )

  const note = (key: string, err: unknown): void => {
    if (closed || !cannotServe(err)) return
    failed.set(o.nodeOf(key), { key })
    lastError = errorText(err)
    update()
  }

  return {
    current: () => state,
    listen(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    settled(timeoutMs) {
      if (state === 'ok' || refused || closed) return Promise.resolve()
      return new Promise<void>((resolve) => {
        const finish = () => {
          cancel()
          waiters.delete(finish)
          resolve()
        }
        waiters.add(finish)
        const cancel = o.clock.schedule(finish, timeoutMs)
      })
    },
    refusal: () => refused,
    update,
    connectionError(err) {
      lastError = errorText(err)
      const refusal = classifyRefusal(err)
      update()
      const first = noteRefusal(refusal)
      if (closed) o.log.debug({ redis: o.where, err: lastError }, 'redis connection error')
      else if (first && refusal) {
        downLogged = true
        logRefusal(lastError, refusal)
      } else if (state === 'down' && !downLogged) {
        downLogged = true
        o.log.warn(
          { redis: o.where, err: lastError },
          'redis store unreachable; serving from memory, retrying',
        )
      } else o.log.debug({ redis: o.where, err: lastError }, 'redis connection error')
    },
    subscribeFailed(err, connectionUp) {
      // Refused while connected (an ACL without the channel) is a setting to fix; a drop
      // mid-outage is not worth a line.
      const refusal = connectionUp ? classifyRefusal(err) : undefined
      if (refusal) {
        if (noteRefusal(refusal)) logRefusal(err.message, refusal)
      } else if (connectionUp) {
        o.log.warn({ err: err.message }, 'redis subscribe failed; retried on reconnect')
      } else o.log.debug({ err: err.message }, 'redis subscribe failed; retried on reconnect')
    },
    watch(key, command) {
      return command.catch((err: unknown) => {
        note(key, err)
        throw err
      })
    },
    note,
    close() {
      closed = true
      cancelTimer?.()
      cancelTimer = undefined
      listeners.clear()
      for (const wake of [...waiters]) wake()
      state = 'down'
    },
  }
}
