import { randomUUID } from 'node:crypto'
import type { ConnectionOptions } from 'node:tls'
import calculateSlot from 'cluster-key-slot'
import { Cluster, type RedisOptions } from 'ioredis'
import { type Clock, type FleetClock, systemClock } from '../core/clock.js'
import type { Logger } from '../core/logger.js'
import type { StoreStatus, TokenStore } from '../core/store.js'
import type { Token } from '../core/token.js'
import { createKeyring, type Keyring, recordAuthKey } from './crypto.js'
import { holdLease, releaseWhenAnswered } from './lease.js'
import { decodeBrake, encodeBrake, laterBrake, readTokenRecord, tokenRecordJson } from './records.js'
import {
  createRedisClient,
  firstTlsServer,
  type RedisClient,
  type RedisEndpoints,
} from './redis-connection.js'
import { probeCertificate, type Refusal } from './redis-refusal.js'
import { cannotServe, createRedisState } from './redis-state.js'

export interface RedisStoreOptions {
  /** A single Redis by URL; or `endpoints` for Sentinel and Cluster (then `describe` names it in logs). */
  url?: string
  endpoints?: RedisEndpoints
  describe?: string
  /** Every key and the pub/sub channel live under it, e.g. `token-broker:`. */
  keyPrefix: string
  /** 32 bytes: values are sealed with AES-256-GCM when set. */
  encryptionKey?: Buffer
  /** Keys that still open values but never seal them (a rolling key rotation); only with encryptionKey. */
  oldEncryptionKeys?: readonly Buffer[]
  log: Logger
  /** Bound on one command, so no caller waits on a dead Redis. */
  commandTimeoutMs?: number
  connectTimeoutMs?: number
  /**
   * Judges expiry of tokens and brakes read back, and times the store's own waits; when absent, the
   * fleet clock if one is given, else the system clock.
   */
  clock?: Clock
  /** Set to Redis `TIME` (at connect and every `clockSyncMs`): the fleet's one clock. */
  fleetClock?: FleetClock
  clockSyncMs?: number
  /** TLS settings beyond Node's defaults (a test's own CA). */
  tls?: ConnectionOptions
  /** In [0, 1): the jitter of reconnect delays. */
  random: () => number
}

/**
 * The key of one credential's record of `kind`. The id is a hash tag, so every key of a credential
 * (token, lock, brake, forced-refresh count) lies in one Cluster slot whatever the prefix, and a script may touch them together.
 */
export const credentialKey = (
  prefix: string,
  kind: 'token' | 'lock' | 'brake' | 'forced',
  id: string,
): string => `${prefix}{${id}}:${kind}`

/**
 * The token and brake keys of releases before hash tags: still read (single Redis) until what they
 * hold expires.
 */
const legacyKey = (prefix: string, kind: 'token' | 'brake', id: string): string => `${prefix}${kind}:${id}`

const CLOCK_SYNC_MS = 60_000

export interface RedisTokenStore extends TokenStore {
  /**
   * Waits up to `timeoutMs` for the connection and the pub/sub subscription; never rejects (status()
   * tells the outcome). Optional: the store connects by itself and commands fail fast until then.
   */
  connect(timeoutMs?: number): Promise<void>
  /**
   * While not connected: whether Redis answered and refused this replica (its credentials, its
   * permissions, or Redis's certificate), rather than being unreachable. A wrong setting, which
   * waiting will not cure. With TLS, a handshake of its own tells a certificate problem that the
   * client reported only as a closed connection. Undefined while connected or merely unreachable.
   */
  refusal(): Promise<Refusal | undefined>
}

// Fence and write in one step, so two replicas cannot interleave check and write.
// KEYS[1] token key; ARGV mintedAt, value, expiresAt (ms), channel, id, the mint's start, the
// settings' since (the generation fence, see core/token.ts replaces()), the sealing key's id or '',
// seen, trusted, the stored since. The writer read the record first (`seen`: its fence field, ''
// when absent) and checked it (`trusted`: '1' when it decrypts and meets the read-back rules): only a
// trusted record's fences are obeyed, the generation one taken from inside the checked (and, with a
// key, authenticated) value rather than from the hash's plain `g`, and a record changed since that
// read is not overwritten (-1: read again).
const PUT_LUA = `
local raw = redis.call('HGET', KEYS[1], 'm')
if (raw or '') ~= ARGV[9] then return -1 end
local cur = nil
if ARGV[10] == '1' then cur = tonumber(raw) end
if cur and cur >= tonumber(ARGV[1]) then return 0 end
local since = tonumber(ARGV[11])
if cur and since and since > tonumber(ARGV[6]) then return 0 end
redis.call('HSET', KEYS[1], 'm', ARGV[1], 'v', ARGV[2], 'g', ARGV[7])
if ARGV[8] == '' then redis.call('HDEL', KEYS[1], 'k') else redis.call('HSET', KEYS[1], 'k', ARGV[8]) end
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1`

// Extend the lock only while it still holds our value (the holder is alive and still the holder).
const RENEW_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`

// One forced mint counted in the credential's window, which starts with its first count. A TTL
// missing or longer than the window (not ours) is reset, so the window always ends.
const FORCED_LUA = `
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 or ttl > tonumber(ARGV[1]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}`

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
    seen: string,
    trusted: string,
    storedSince: string,
  ): Promise<number>
  tbReseal(key: string, mintedAt: string, read: string, resealed: string, keyId: string): Promise<number>
  tbRenew(key: string, owner: string, ttlMs: string): Promise<number>
  tbForced(key: string, windowMs: string): Promise<[number, number]>
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
const retryDelay = (attempt: number, random: () => number): number => {
  const base = Math.min(2000, 50 * 2 ** Math.min(attempt, 10))
  return Math.round(base / 2 + random() * (base / 2))
}

export function createRedisStore(opts: RedisStoreOptions): RedisTokenStore {
  const { keyPrefix, log } = opts
  const clock = opts.clock ?? opts.fleetClock ?? systemClock
  const keyring: Keyring | undefined = opts.encryptionKey
    ? createKeyring(opts.encryptionKey, opts.oldEncryptionKeys)
    : undefined
  // The current key's first: brakes are signed with it and accepted under any key of the keyring.
  const authKeys = opts.encryptionKey
    ? [opts.encryptionKey, ...(opts.oldEncryptionKeys ?? [])].map(recordAuthKey)
    : undefined
  /** Stops the clean-up of timed-out lock attempts, and lock renewals, at close. */
  const closed = new AbortController()
  const tokenKey = (id: string) => credentialKey(keyPrefix, 'token', id)
  const lockKey = (id: string) => credentialKey(keyPrefix, 'lock', id)
  const brakeKey = (id: string) => credentialKey(keyPrefix, 'brake', id)
  const forcedKey = (id: string) => credentialKey(keyPrefix, 'forced', id)
  const channel = `${keyPrefix}tokens`
  const endpoints: RedisEndpoints = opts.endpoints ?? { mode: 'single', url: opts.url ?? '' }
  const where = opts.describe ?? redactUrl(opts.url ?? '')
  // Only a single Redis can hold what earlier releases wrote (they spoke to nothing else).
  const readLegacy = endpoints.mode === 'single'

  const options: RedisOptions = {
    // Fail fast while disconnected instead of queueing: callers carry on from memory (Redis down is
    // survived, docs/fleet.md: What the fleet promises).
    enableOfflineQueue: false,
    commandTimeout: opts.commandTimeoutMs ?? 1000,
    connectTimeout: opts.connectTimeoutMs ?? 2000,
    // 0: commands in flight when the connection drops are rejected at once, never replayed later
    // (a replayed SET NX could take a lock nobody knows about).
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    retryStrategy: (attempt) => retryDelay(attempt, opts.random),
  }
  const redis: RedisClient = createRedisClient(endpoints, options, opts.tls)
  redis.defineCommand('tbPut', { numberOfKeys: 1, lua: PUT_LUA })
  redis.defineCommand('tbRelease', { numberOfKeys: 1, lua: RELEASE_LUA })
  redis.defineCommand('tbReseal', { numberOfKeys: 1, lua: RESEAL_LUA })
  redis.defineCommand('tbRenew', { numberOfKeys: 1, lua: RENEW_LUA })
  redis.defineCommand('tbForced', { numberOfKeys: 1, lua: FORCED_LUA })
  const scripts = redis as unknown as ScriptCommands

  let closing = false

  // A second connection for pub/sub (a subscribed connection can run no other command). Made at
  // once, so notifications flow from the moment connect() resolves.
  // On a Cluster, ioredis itself moves the subscription to another node when its node fails.
  const sub: RedisClient = createRedisClient(
    endpoints,
    {
      ...options,
      autoResubscribe: endpoints.mode === 'cluster',
    },
    opts.tls,
  )
  let subscribed = false

  /** The node serving `key` now, by the Cluster's slot map ('' when the store speaks to one Redis). */
  const nodeOf = (key: string): string =>
    redis instanceof Cluster ? String(redis.slots[calculateSlot(key)] ?? '') : ''

  // 'ok' means fully working: commands AND the notification subscription. So a transition to 'ok'
  // is the point where a caller should re-read what it may have missed while down, and write back
  // what it could not write.
  const state = createRedisState({
    connected: () => redis.status === 'ready' && subscribed,
    check: (keys) => checkServing(keys),
    nodeOf,
    clock,
    log,
    where,
  })
  const { watch } = state
  // Registered before the generic handlers, so they see the subscription as lost.
  sub.on('close', () => {
    subscribed = false
  })
  for (const c of [redis, sub]) {
    c.on('ready', state.update)
    c.on('close', state.update)
    c.on('end', state.update)
    // Always handled (an unhandled 'error' event would crash the process). ioredis messages carry
    // host:port at most, never the password.
    c.on('error', state.connectionError)
  }
  // Subscribing on every 'ready' (not once) makes the subscription survive Redis restarts.
  sub.on('ready', () => {
    sub.subscribe(channel).then(
      () => {
        subscribed = true
        state.update()
      },
      (err: Error) => state.subscribeFailed(err, sub.status === 'ready'),
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
    const read = readTokenRecord(h, key, keyring, clock.now())
    if (read.reseal !== undefined) reseal(id, key, h.m ?? '', h.v ?? '', read.reseal)
    if (read.fault !== undefined) return unreadable(id, h.m, read.fault)
    if (read.token) badLogged.delete(id)
    return read.token
  }

  /** A value an old key opened: sealed again with the current key, unless it changed meanwhile. */
  const reseal = (id: string, key: string, m: string, read: string, plaintext: string): void => {
    if (!keyring) return
    watch(key, scripts.tbReseal(key, m, read, keyring.seal(plaintext, key), keyring.keyId)).then(
      (done) => {
        if (done === 1) log.info({ credential: id }, 'stored token re-sealed with the current key')
      },
      (err: Error) =>
        log.debug({ credential: id, err: err.message }, 're-seal failed; the next write does it'),
    )
  }

  /**
   * HGETALL of every key in as few round trips as the topology allows: one pipeline per Cluster
   * node. A key whose read failed holds the error in its place, so a node that fails costs only its
   * own keys.
   */
  const readHashes = async (keys: readonly string[]): Promise<Array<Record<string, string> | Error>> => {
    const groups = new Map<string, number[]>()
    for (const [i, key] of keys.entries()) {
      // ioredis sends a pipeline to one node: group the keys by the nodes serving their slots.
      const group = nodeOf(key)
      const list = groups.get(group)
      if (list) list.push(i)
      else groups.set(group, [i])
    }
    const out: Array<Record<string, string> | Error | undefined> = new Array(keys.length)
    await Promise.all(
      [...groups.values()].map(async (indexes) => {
        try {
          const replies = (await redis.pipeline(indexes.map((i) => ['hgetall', keys[i] ?? ''])).exec()) ?? []
          for (const [j, [err, value]] of replies.entries()) {
            const i = indexes[j] ?? 0
            if (err) state.note(keys[i] ?? '', err)
            out[i] = err ?? (value as Record<string, string>)
          }
        } catch (err) {
          state.note(keys[indexes[0] ?? 0] ?? '', err)
          for (const i of indexes) out[i] = err instanceof Error ? err : new Error(String(err))
        }
      }),
    )
    return Array.from(out, (h) => h ?? new Error('no reply from Redis'))
  }

  /**
   * The stored tokens of `ids`, in order; on a single Redis the later of the current and the legacy
   * key. An id whose read failed holds the error instead.
   */
  const readTokens = async (ids: readonly string[]): Promise<Array<Token | undefined | Error>> => {
    const keys = ids.map(tokenKey)
    const legacy = readLegacy ? ids.map((id) => legacyKey(keyPrefix, 'token', id)) : []
    const hashes = await readHashes([...keys, ...legacy])
    return ids.map((id, i) => {
      const h = hashes[i] ?? {}
      const old = readLegacy ? (hashes[ids.length + i] ?? {}) : {}
      if (h instanceof Error) return h
      if (old instanceof Error) return old
      const current = decode(id, keys[i] ?? '', h)
      if (!readLegacy) return current
      const legacyToken = decode(id, legacy[i] ?? '', old)
      return !legacyToken || (current && current.mintedAt >= legacyToken.mintedAt) ? current : legacyToken
    })
  }

  // The fleet clock: this replica's clock plus its offset to Redis TIME (half the round trip added).
  const syncClock = async (): Promise<void> => {
    const fleet = opts.fleetClock
    if (!fleet || redis.status !== 'ready') return
    const sent = fleet.base.now()
    const [sec, usec] = await redis.time()
    const received = fleet.base.now()
    const redisNow = Number(sec) * 1000 + Math.floor(Number(usec) / 1000)
    const measured = Math.round(redisNow - (sent + received) / 2)
    // Redis answered somewhere within the round trip, and TIME is read to the millisecond: an offset
    // inside that uncertainty is indistinguishable from none, and replicas on one host would
    // otherwise each take their own measurement noise for an offset.
    const uncertainty = (received - sent) / 2 + 1
    const offset = Math.abs(measured) <= uncertainty ? 0 : measured
    if (Math.abs(offset - fleet.offsetMs()) > 1000 || (Math.abs(offset) > 1000 && fleet.offsetMs() === 0)) {
      log.warn({ offsetMs: offset }, 'this clock differs from Redis TIME; using Redis time for token times')
    }
    fleet.setOffset(offset)
  }
  const syncQuietly = () => {
    syncClock().catch((err: Error) => log.debug({ err: err.message }, 'clock sync with Redis failed'))
  }
  // Before the store says ok, after each reconnect and after commands failed: the fleet clock is
  // measured first (token times are judged on it from then on, and what was stamped on the old
  // reading moves with it before anything is written back), and each key whose command failed is
  // read, which on a Cluster reaches the master that failed. Any answer, a refusal included, is
  // Redis serving; only a failure saying it cannot serve keeps the store down.
  const checkServing = async (keys: readonly string[]): Promise<void> => {
    const answered = (p: Promise<unknown>) =>
      p.then(
        () => undefined,
        (err: unknown) => {
          if (cannotServe(err)) throw err
        },
      )
    await answered(syncClock())
    await Promise.all(keys.map((key) => answered(redis.exists(key))))
  }
  let stopSync: (() => void) | undefined
  if (opts.fleetClock) {
    const fleet = opts.fleetClock
    const every = opts.clockSyncMs ?? CLOCK_SYNC_MS
    const again = () => {
      syncQuietly()
      stopSync = fleet.base.schedule(again, every)
    }
    stopSync = fleet.base.schedule(again, every)
  }

  const store: RedisTokenStore = {
    kind: 'redis',
    async connect(timeoutMs = 2000) {
      if (closing || state.refusal()) return
      if (state.current() === 'ok') {
        if (opts.fleetClock) await syncClock().catch(() => {})
        return
      }
      // The clock is measured before the store says ok: token times are judged on the fleet
      // clock from the first read on.
      await state.settled(timeoutMs)
    },
    async get(id) {
      const [token] = await readTokens([id])
      if (token instanceof Error) throw token
      return token
    },
    async getMany(ids) {
      const tokens = await readTokens(ids)
      const found = new Map<string, Token>()
      const unknown = new Set<string>()
      let failure: Error | undefined
      for (const [i, id] of ids.entries()) {
        const token = tokens[i]
        if (token instanceof Error) {
          unknown.add(id)
          failure ??= token
        } else if (token) found.set(id, token)
      }
      if (failure) {
        // No part of Redis answered: as unreachable as for any other call.
        if (tokens.every((t) => t instanceof Error)) throw failure
        log.warn(
          { unknown: unknown.size, err: failure.message },
          'some stored tokens not read: part of Redis did not answer; those credentials are left unknown',
        )
      }
      return Object.assign(found, { unknown })
    },
    async put(id, token) {
      if (!Number.isFinite(token.mintedAt) || !Number.isFinite(token.expiresAt)) {
        throw new TypeError('token times must be finite numbers')
      }
      const key = tokenKey(id)
      const plain = tokenRecordJson(token)
      const value = keyring ? keyring.seal(plain, key) : plain
      const expiry = String(Math.ceil(token.expiresAt))
      const startedAt = String(token.generation?.startedAt ?? token.mintedAt)
      const since = String(token.generation?.since ?? 0)
      // Read, check, then write unless the record changed meanwhile; a record that keeps changing
      // is another replica's steady writing, which the fence would refuse anyway.
      for (let round = 0; round < 3; round++) {
        const h = await watch(key, redis.hgetall(key))
        const stored = decode(id, key, h)
        const trusted = stored !== undefined ? '1' : '0'
        const written = await watch(
          key,
          scripts.tbPut(
            key,
            String(token.mintedAt),
            value,
            expiry,
            channel,
            id,
            startedAt,
            since,
            keyring?.keyId ?? '',
            h.m ?? '',
            trusted,
            stored?.generation ? String(stored.generation.since) : '',
          ),
        )
        if (written !== -1) return written === 1
      }
      return false
    },
    async getBrake(id) {
      // "kind:until[:tag]": holds no secret, so it is never encrypted, only authenticated.
      const key = brakeKey(id)
      if (!readLegacy) return decodeBrake(key, await watch(key, redis.get(key)), authKeys, clock.now())
      // An earlier release's brake is authenticated under the key name it was written (and signed) under.
      const legacy = legacyKey(keyPrefix, 'brake', id)
      const [raw = null, legacyRaw = null] = await watch(key, redis.mget(key, legacy))
      const now = clock.now()
      return laterBrake(decodeBrake(key, raw, authKeys, now), decodeBrake(legacy, legacyRaw, authKeys, now))
    },
    async setBrake(id, brake) {
      if (!brake) {
        await watch(
          brakeKey(id),
          redis.del(brakeKey(id), ...(readLegacy ? [legacyKey(keyPrefix, 'brake', id)] : [])),
        )
        return
      }
      const ttl = Math.ceil(brake.until - clock.now())
      const key = brakeKey(id)
      if (ttl > 0) await watch(key, redis.set(key, encodeBrake(key, brake, authKeys), 'PX', ttl))
    },
    async acquire(id, ttlMs) {
      const key = lockKey(id)
      const owner = randomUUID()
      const ttl = Math.max(1, Math.ceil(ttlMs))
      const release = () => watch(key, scripts.tbRelease(key, owner))
      let ok: string | null
      try {
        ok = await watch(key, redis.set(key, owner, 'PX', ttl, 'NX'))
      } catch (err) {
        // Unanswered is not "not taken": the SET may run when Redis resumes.
        releaseWhenAnswered(release, clock, closed.signal, log, id)
        throw err
      }
      if (ok !== 'OK') return undefined
      return holdLease({
        id,
        ttlMs: ttl,
        clock,
        log,
        renew: async () => (await watch(key, scripts.tbRenew(key, owner, String(ttl)))) === 1,
        remove: release,
        signal: closed.signal,
      })
    },
    async countForced(id, windowMs) {
      const key = forcedKey(id)
      const [count, resetInMs] = await watch(
        key,
        scripts.tbForced(key, String(Math.max(1, Math.ceil(windowMs)))),
      )
      return { count, resetInMs }
    },
    async refusal() {
      if (state.current() === 'ok') return undefined
      const refused = state.refusal()
      if (refused) return refused
      const server = firstTlsServer(endpoints, opts.tls)
      if (!server) return undefined
      return probeCertificate(server.host, server.port, server.tls, options.connectTimeout ?? 2000)
    },
    onToken(listener) {
      tokenListeners.push(listener)
    },
    onState(listener) {
      state.listen(listener)
    },
    status(): StoreStatus {
      return { kind: 'redis', state: state.current(), encrypted: keyring !== undefined }
    },
    async close() {
      closing = true
      state.close()
      closed.abort()
      stopSync?.()
      // QUIT lets Redis finish cleanly; bounded, then a hard disconnect (also stops reconnecting).
      const quit = async (c: RedisClient) => {
        let cancel = () => {}
        await Promise.race([
          c.quit().catch(() => undefined),
          new Promise<void>((r) => {
            cancel = clock.schedule(r, 1000)
          }),
        ])
        cancel()
        c.disconnect()
      }
      await Promise.all([quit(redis), quit(sub)])
    },
  }
  return store
}
