import { randomUUID } from 'node:crypto'
import { Redis, type RedisOptions } from 'ioredis'
import { type Clock, systemClock } from '../core/clock.js'
import type { Lock, StoreState, StoreStatus, TokenStore } from '../core/store.js'
import type { Generation, Token } from '../core/token.js'
import { createKeyring, type Keyring } from './crypto.js'

type LogFn = (objOrMsg: object | string, msg?: string) => void
/** The subset of a pino logger the store uses. */
export interface StoreLog {
  debug: LogFn
  info: LogFn
  warn: LogFn
  error: LogFn
}

export interface RedisStoreOptions {
  url: string
  /** Every key and the pub/sub channel live under it, e.g. `token-broker:`. */
  keyPrefix: string
  /** 32 bytes: values are sealed with AES-256-GCM when set. */
  encryptionKey?: Buffer
  /** Keys that still open values but never seal them (a rolling key rotation); only with encryptionKey. */
  oldEncryptionKeys?: readonly Buffer[]
  log: StoreLog
  /** Bound on one command, so no caller waits on a dead Redis. */
  commandTimeoutMs?: number
  connectTimeoutMs?: number
  /** Judges expiry of tokens and brakes read back; the system clock unless a test drives time. */
  clock?: Clock
}

export interface RedisTokenStore extends TokenStore {
  /**
   * Waits up to `timeoutMs` for the connection and the pub/sub subscription; never rejects (status()
   * tells the outcome). Optional: the store connects by itself and commands fail fast until then.
   */
  connect(timeoutMs?: number): Promise<void>
}

// Fence and write in one step, so two replicas cannot interleave check and write.
// KEYS[1] token key; ARGV mintedAt, value, expiresAt (ms), channel, id, the mint's start, the
// settings' since (the generation fence, see core/token.ts replaces()), the sealing key's id or ''.
const PUT_LUA = `
local cur = tonumber(redis.call('HGET', KEYS[1], 'm'))
if cur and cur >= tonumber(ARGV[1]) then return 0 end
local since = tonumber(redis.call('HGET', KEYS[1], 'g'))
if cur and since and since > tonumber(ARGV[6]) then return 0 end
redis.call('HSET', KEYS[1], 'm', ARGV[1], 'v', ARGV[2], 'g', ARGV[7])
if ARGV[8] == '' then redis.call('HDEL', KEYS[1], 'k') else redis.call('HSET', KEYS[1], 'k', ARGV[8]) end
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1`

// Re-seal a value read under an old key, only if it is still the value that was read.
// KEYS[1] token key; ARGV mintedAt, the value read, the value re-sealed, the current key's id.
const RESEAL_LUA = `
if redis.call('HGET', KEYS[1], 'm') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'v') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[3], 'k', ARGV[4])
return 1`

// Delete the lock only while it still holds our value: after our TTL it may be someone else's.
const RELEASE_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`

interface ScriptCommands {
  tbPut(
    key: string,
    mintedAt: string,
    value: string,
    expiresAt: string,
    channel: string,
    id: string,
    startedAt: string,
    since: string,
    keyId: string,
  ): Promise<number>
  tbReseal(key: string, mintedAt: string, read: string, resealed: string, keyId: string): Promise<number>
  tbRelease(key: string, owner: string): Promise<number>
}

/** The URL with its password replaced, for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.password) u.password = '***'
    return u.toString()
  } catch {
    return '<unparseable url>'
  }
}

/** Reconnect delay: exponential from 50 ms, capped at 2 s, with jitter so replicas don't stampede. */
const retryDelay = (attempt: number): number => {
  const base = Math.min(2000, 50 * 2 ** Math.min(attempt, 10))
  return Math.round(base / 2 + Math.random() * (base / 2))
}

export function createRedisStore(opts: RedisStoreOptions): RedisTokenStore {
  const { keyPrefix, log } = opts
  const clock = opts.clock ?? systemClock
  const keyring: Keyring | undefined = opts.encryptionKey
    ? createKeyring(opts.encryptionKey, opts.oldEncryptionKeys)
    : undefined
  const tokenKey = (id: string) => `${keyPrefix}token:${id}`
  const lockKey = (id: string) => `${keyPrefix}lock:${id}`
  const brakeKey = (id: string) => `${keyPrefix}brake:${id}`
  const channel = `${keyPrefix}tokens`
  const where = redactUrl(opts.url)

  const options: RedisOptions = {
    // Fail fast while disconnected instead of queueing: callers carry on from memory (promise 7).
    enableOfflineQueue: false,
    commandTimeout: opts.commandTimeoutMs ?? 1000,
    connectTimeout: opts.connectTimeoutMs ?? 2000,
    // 0: commands in flight when the connection drops are rejected at once, never replayed later
    // (a replayed SET NX could take a lock nobody knows about).
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    retryStrategy: retryDelay,
  }
  const redis = new Redis(opts.url, options)
  redis.defineCommand('tbPut', { numberOfKeys: 1, lua: PUT_LUA })
  redis.defineCommand('tbRelease', { numberOfKeys: 1, lua: RELEASE_LUA })
  redis.defineCommand('tbReseal', { numberOfKeys: 1, lua: RESEAL_LUA })
  const scripts = redis as unknown as ScriptCommands

  // 'ok' means fully working: commands AND the notification subscription. So a transition to 'ok'
  // is the point where a caller should re-read what it may have missed while down.
  let state: StoreState = 'down'
  let closing = false
  let lastError = ''
  // One warn line per outage (including "unreachable from the start"), not one per retry.
  let downLogged = false
  const stateListeners: Array<(s: StoreState) => void> = []
  const readyWaiters = new Set<() => void>()

  // A second connection for pub/sub (a subscribed connection can run no other command). Made at
  // once, so notifications flow from the moment connect() resolves.
  const sub = redis.duplicate({ autoResubscribe: false })
  let subscribed = false

  const update = () => {
    const next: StoreState = redis.status === 'ready' && subscribed ? 'ok' : 'down'
    if (next === state || closing) return
    state = next
    if (next === 'ok') {
      downLogged = false
      lastError = ''
      log.info({ redis: where }, 'redis store connected')
      for (const w of readyWaiters) w()
    } else {
      downLogged = true
      log.warn({ redis: where, err: lastError }, 'redis store down; serving from memory, reconnecting')
    }
    for (const l of stateListeners) {
      try {
        l(next)
      } catch {
        // A listener's failure must not break the connection handling.
      }
    }
  }
  // Always handled (an unhandled 'error' event would crash the process). ioredis messages carry
  // host:port at most, never the password.
  const onError = (err: Error) => {
    lastError = err.message
    update()
    if (state === 'down' && !downLogged && !closing) {
      downLogged = true
      log.warn({ redis: where, err: err.message }, 'redis store unreachable; serving from memory, retrying')
    } else log.debug({ redis: where, err: err.message }, 'redis connection error')
  }
  // Registered before the generic handlers, so they see the subscription as lost.
  sub.on('close', () => {
    subscribed = false
  })
  for (const c of [redis, sub]) {
    c.on('ready', update)
    c.on('close', update)
    c.on('end', update)
    c.on('error', onError)
  }
  // Subscribing on every 'ready' (not once) makes the subscription survive Redis restarts.
  sub.on('ready', () => {
    sub.subscribe(channel).then(
      () => {
        subscribed = true
        update()
      },
      // Refused while connected (e.g. an ACL) is worth a warn; a drop mid-outage is not.
      (err: Error) =>
        log[sub.status === 'ready' ? 'warn' : 'debug'](
          { err: err.message },
          'redis subscribe failed; retried on reconnect',
        ),
    )
  })
  const tokenListeners: Array<(id: string) => void> = []
  sub.on('message', (ch: string, id: string) => {
    if (ch !== channel) return
    for (const l of tokenListeners) {
      try {
        l(id)
      } catch {
        // Keep delivering to the other listeners.
      }
    }
  })

  // Warn once per stored value that fails, not on every read of it.
  const badLogged = new Map<string, string>()
  const unreadable = (id: string, m: string | undefined, reason: string): undefined => {
    const mark = `${reason}:${m ?? ''}`
    if (badLogged.get(id) !== mark) {
      badLogged.set(id, mark)
      log.warn({ credential: id, reason }, 'stored token unreadable; treated as absent')
    }
    return undefined
  }

  const decode = (id: string, key: string, h: Record<string, string>): Token | undefined => {
    const { m, v } = h
    if (m === undefined && v === undefined) return undefined // no such key: nothing stored
    if (m === undefined || v === undefined) return unreadable(id, m, 'missing fields')
    let json: string
    if (keyring) {
      try {
        const opened = keyring.open(v, key, h.k)
        json = opened.plaintext
        if (!opened.current) reseal(id, key, m, v, json)
      } catch {
        return unreadable(id, m, 'does not decrypt (tampered, moved, or no configured key)')
      }
    } else json = v
    let p: unknown
    try {
      p = JSON.parse(json)
    } catch {
      return unreadable(id, m, keyring ? 'not JSON' : 'not JSON (encrypted while no key is set?)')
    }
    const t = p as Partial<Record<keyof Token, unknown>> | null
    if (
      typeof t !== 'object' ||
      t === null ||
      typeof t.accessToken !== 'string' ||
      t.accessToken === '' ||
      typeof t.tokenType !== 'string' ||
      (t.mageId !== undefined && typeof t.mageId !== 'string') ||
      typeof t.expiresAt !== 'number' ||
      !Number.isFinite(t.expiresAt) ||
      typeof t.mintedAt !== 'number' ||
      !Number.isFinite(t.mintedAt) ||
      (t.generation !== undefined && !isGeneration(t.generation))
    ) {
      return unreadable(id, m, 'bad shape')
    }
    // The fence field must match the payload, or the fence could be bypassed by a crafted value.
    if (Number(m) !== t.mintedAt) return unreadable(id, m, 'fence field does not match')
    if (t.expiresAt <= clock.now()) return undefined // normal near expiry; Redis drops it shortly
    badLogged.delete(id)
    const token: Token = {
      accessToken: t.accessToken,
      tokenType: t.tokenType,
      expiresAt: t.expiresAt,
      mintedAt: t.mintedAt,
      ...(t.mageId !== undefined ? { mageId: t.mageId } : {}),
      ...(isGeneration(t.generation) ? { generation: t.generation } : {}),
    }
    return token
  }

  /** A value an old key opened: sealed again with the current key, unless it changed meanwhile. */
  const reseal = (id: string, key: string, m: string, read: string, plaintext: string): void => {
    if (!keyring) return
    scripts.tbReseal(key, m, read, keyring.seal(plaintext, key), keyring.keyId).then(
      (done) => {
        if (done === 1) log.info({ credential: id }, 'stored token re-sealed with the current key')
      },
      (err: Error) =>
        log.debug({ credential: id, err: err.message }, 're-seal failed; the next write does it'),
    )
  }

  const store: RedisTokenStore = {
    kind: 'redis',
    async connect(timeoutMs = 2000) {
      if (state === 'ok' || closing) return
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer)
          readyWaiters.delete(done)
          resolve()
        }
        const timer = setTimeout(done, timeoutMs)
        timer.unref()
        readyWaiters.add(done)
      })
    },
    async get(id) {
      const key = tokenKey(id)
      return decode(id, key, await redis.hgetall(key))
    },
    async put(id, token) {
      if (!Number.isFinite(token.mintedAt) || !Number.isFinite(token.expiresAt)) {
        throw new TypeError('token times must be finite numbers')
      }
      const key = tokenKey(id)
      const plain = JSON.stringify({
        accessToken: token.accessToken,
        tokenType: token.tokenType,
        mageId: token.mageId,
        expiresAt: token.expiresAt,
        mintedAt: token.mintedAt,
        generation: token.generation,
      })
      const value = keyring ? keyring.seal(plain, key) : plain
      const expiry = String(Math.ceil(token.expiresAt))
      const startedAt = String(token.generation?.startedAt ?? token.mintedAt)
      const since = String(token.generation?.since ?? 0)
      return (
        (await scripts.tbPut(
          key,
          String(token.mintedAt),
          value,
          expiry,
          channel,
          id,
          startedAt,
          since,
          keyring?.keyId ?? '',
        )) === 1
      )
    },
    async getBrake(id) {
      // "kind:until": holds no secret, so it is never encrypted.
      const [kind, until] = ((await redis.get(brakeKey(id))) ?? '').split(':')
      if ((kind !== 'rejected' && kind !== 'unavailable') || !(Number(until) > clock.now())) return undefined
      return { kind, until: Number(until) }
    },
    async setBrake(id, brake) {
      if (!brake) {
        await redis.del(brakeKey(id))
        return
      }
      const ttl = Math.ceil(brake.until - clock.now())
      if (ttl > 0) await redis.set(brakeKey(id), `${brake.kind}:${brake.until}`, 'PX', ttl)
    },
    async acquire(id, ttlMs) {
      const key = lockKey(id)
      const owner = randomUUID()
      const ok = await redis.set(key, owner, 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX')
      if (ok !== 'OK') return undefined
      let released = false
      const lock: Lock = {
        // Never rejects: when Redis is unreachable the lock simply expires with its TTL.
        async release() {
          if (released) return
          released = true
          try {
            await scripts.tbRelease(key, owner)
          } catch (err) {
            log.debug(
              { credential: id, err: (err as Error).message },
              'lock release failed; it expires by TTL',
            )
          }
        },
      }
      return lock
    },
    onToken(listener) {
      tokenListeners.push(listener)
    },
    onState(listener) {
      stateListeners.push(listener)
    },
    status(): StoreStatus {
      return { kind: 'redis', state, encrypted: keyring !== undefined }
    },
    async close() {
      closing = true
      // QUIT lets Redis finish cleanly; bounded, then a hard disconnect (also stops reconnecting).
      const quit = async (c: Redis) => {
        let timer: NodeJS.Timeout | undefined
        await Promise.race([
          c.quit().catch(() => undefined),
          new Promise((r) => {
            timer = setTimeout(r, 1000)
          }),
        ])
        clearTimeout(timer)
        c.disconnect()
      }
      await Promise.all([quit(redis), quit(sub)])
      state = 'down'
    },
  }
  return store
}

function isGeneration(g: unknown): g is Generation {
  if (typeof g !== 'object' || g === null) return false
  const { settings, since, startedAt } = g as Record<string, unknown>
  return (
    typeof settings === 'string' &&
    typeof since === 'number' &&
    Number.isFinite(since) &&
    typeof startedAt === 'number' &&
    Number.isFinite(startedAt)
  )
}
