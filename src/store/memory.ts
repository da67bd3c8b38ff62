import { randomUUID } from 'node:crypto'
import { type Clock, systemClock } from '../core/clock.js'
import { silentLogger } from '../core/logger.js'
import type { Brake, StoreState, StoreStatus, TokenStore } from '../core/store.js'
import { replaces, type Token } from '../core/token.js'
import { holdLease } from './lease.js'

/**
 * The store of a single replica: a Map in this process. Same semantics as the Redis store (fence,
 * expiry, notifications, locks), so the token logic behaves the same with either.
 */
export function createMemoryStore(opts: { clock?: Clock } = {}): TokenStore {
  const clock = opts.clock ?? systemClock
  const tokens = new Map<string, Token>()
  const locks = new Map<string, { owner: string; expiresAt: number }>()
  const listeners: Array<(id: string) => void> = []
  const brakes = new Map<string, Brake>()
  const forced = new Map<string, { count: number; resetAt: number }>()

  const live = (id: string): Token | undefined => {
    const t = tokens.get(id)
    if (t && t.expiresAt <= clock.now()) {
      tokens.delete(id)
      return undefined
    }
    return t
  }

  return {
    kind: 'memory',
    async get(id) {
      return live(id)
    },
    async getMany(ids) {
      const found = new Map<string, Token>()
      for (const id of ids) {
        const token = live(id)
        if (token) found.set(id, token)
      }
      // An in-process Map always answers: nothing is unknown.
      return Object.assign(found, { unknown: new Set<string>() })
    },
    async put(id, token) {
      // The fence: never replace a token minted at the same time or later, nor one whose settings took
      // effect after this token's mint began (the generation fence). An expired one is gone.
      const cur = live(id)
      if (cur && !replaces(token, cur)) return false
      tokens.set(id, token)
      // Asynchronously, as a remote notification would arrive: the caller's put resolves first.
      for (const l of listeners) {
        queueMicrotask(() => {
          try {
            l(id)
          } catch {
            // A listener's failure must not affect the writer or the other listeners.
          }
        })
      }
      return true
    },
    async acquire(id, ttlMs) {
      const now = clock.now()
      const held = locks.get(id)
      if (held && held.expiresAt > now) return undefined
      const owner = randomUUID()
      locks.set(id, { owner, expiresAt: now + ttlMs })
      const ours = () => {
        const lock = locks.get(id)
        return lock?.owner === owner && lock.expiresAt > clock.now() ? lock : undefined
      }
      return holdLease({
        id,
        ttlMs,
        clock,
        log: silentLogger,
        async renew() {
          const lock = ours()
          if (lock) lock.expiresAt = clock.now() + ttlMs
          return lock !== undefined
        },
        // Only our own acquisition: after our TTL lapsed somebody else may hold it now.
        async remove() {
          if (locks.get(id)?.owner === owner) locks.delete(id)
        },
      })
    },
    async countForced(id, windowMs) {
      const now = clock.now()
      const cur = forced.get(id)
      const window = cur && cur.resetAt > now ? cur : { count: 0, resetAt: now + windowMs }
      window.count++
      forced.set(id, window)
      return { count: window.count, resetInMs: window.resetAt - now }
    },
    async getBrake(id) {
      const brake = brakes.get(id)
      return brake && brake.until > clock.now() ? brake : undefined
    },
    async setBrake(id, brake) {
      if (brake) brakes.set(id, brake)
      else brakes.delete(id)
    },
    onToken(listener) {
      listeners.push(listener)
    },
    onState(_listener: (state: StoreState) => void) {
      // Always 'ok': an in-process Map never goes down.
    },
    status(): StoreStatus {
      return { kind: 'memory', state: 'ok', encrypted: false }
    },
    async close() {
      tokens.clear()
      locks.clear()
      brakes.clear()
      forced.clear()
      listeners.length = 0
    },
  }
}
