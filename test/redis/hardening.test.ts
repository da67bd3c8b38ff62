import type { Redis } from 'ioredis'
import { afterEach, beforeEach, describe, expect, inject, it, onTestFinished } from 'vitest'
import { parseEncryptionKey } from '../../src/config/encryption-keys.js'
import type { Token } from '../../src/core/token.js'
import { createCipher } from '../../src/store/crypto.js'
import { freePort, sleep } from '../../tools/process.js'
import { auth, baseEnv, brokerDocument, IMS_CLIENT_ID, SECRETS, writeConfig } from '../helpers/broker.js'
import { refresh, TEST_ENCRYPTION_KEY, tokenOf, useFleet } from '../helpers/fleet.js'
import { legacyBrakeKey, signedBrake } from '../helpers/legacy-brake.js'
import { deleteKeys, redisClient } from '../helpers/redis-keys.js'
import { redisStore } from '../helpers/redis-store.js'
import { startServer } from '../helpers/server-process.js'
import { eventually } from '../store/contract.js'

const redisUrl = inject('redisUrl')
const DAY = 86_400_000

const fleet = useFleet({
  env: () => ({ REDIS_URL: redisUrl }),
  cleanup: (prefix) => deleteKeys(redisUrl, prefix),
})
let admin: Redis
beforeEach(() => {
  admin = redisClient(redisUrl)
})
afterEach(async () => {
  await admin.quit()
})

const replica = ({ key, ...opts }: { key?: boolean; logLines?: string[]; warm?: boolean } = {}) =>
  fleet.replica(key ? { TOKEN_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY } : {}, opts)

const tokenKey = () => `${fleet.prefix}{adobe-ims}:token`
const brakeKey = () => `${fleet.prefix}{adobe-ims}:brake`
const lockKey = () => `${fleet.prefix}{adobe-ims}:lock`

/** Writes a token record straight into Redis, in the store's format, past the fence. */
async function writeRecord(token: Token, key?: string): Promise<void> {
  const plain = JSON.stringify(token)
  const v = key ? createCipher(parseEncryptionKey(key)).seal(plain, tokenKey()) : plain
  await admin.hset(tokenKey(), { m: String(token.mintedAt), v })
}
async function storedToken(): Promise<Token> {
  return JSON.parse((await admin.hget(tokenKey(), 'v')) ?? 'null') as Token
}

describe('a refresh never hands back the rejected token, nor one older than the held one', () => {
  it('mints and serves a new token when Redis holds the rejected one with a later mint time', async () => {
    const app = await replica()
    const rejected = await tokenOf(app)
    // A replica whose clock runs a minute ahead stored the same token: a later mint time.
    const stored = await storedToken()
    await writeRecord({ ...stored, mintedAt: Date.now() + 60_000 })
    const before = fleet.sim.mints(IMS_CLIENT_ID)
    const res = await refresh(app, rejected)
    expect(res.statusCode, res.body).toBe(200)
    const fresh = res.json().access_token as string
    expect(fresh).not.toBe(rejected)
    expect(fleet.sim.mints(IMS_CLIENT_ID)).toBe(before + 1)
    // And it is not pinned: the next reads serve the new token, not the rejected one.
    expect(await tokenOf(app)).toBe(fresh)
  })

  it('does not take a stored token minted before the held one', async () => {
    const app = await replica()
    const rejected = await tokenOf(app)
    const held = await storedToken()
    await writeRecord({ ...held, accessToken: 'an-older-token', mintedAt: held.mintedAt - 60_000 })
    const res = await refresh(app, rejected)
    expect(res.statusCode, res.body).toBe(200)
    expect(res.json().access_token).not.toBe('an-older-token')
    expect(res.json().access_token).not.toBe(rejected)
    expect(fleet.sim.mints(IMS_CLIENT_ID)).toBe(2) // the warm-up, then this one
  })
})

describe('records read back from Redis are checked like an upstream answer', () => {
  it('a record with an expiry of 1e20 is absent, logged once without content, and never a 500', async () => {
    const now = Date.now()
    await writeRecord({
      accessToken: 'planted-token-x1',
      tokenType: 'bearer',
      mintedAt: now,
      expiresAt: 1e20,
    })
    const lines: string[] = []
    const app = await replica({ logLines: lines })
    const ready = await app.inject({ url: '/readyz' })
    expect(ready.statusCode, ready.body).toBe(200)
    expect(ready.json().credentials['adobe-ims'].state).toBe('ok')
    const creds = await app.inject({ url: '/v1/credentials', headers: auth(SECRETS.keyAll) })
    expect(creds.statusCode, creds.body).toBe(200)
    expect(await tokenOf(app)).not.toBe('planted-token-x1')
    const unreadable = lines.filter((l) => l.includes('stored token unreadable'))
    expect(unreadable).toHaveLength(1)
    expect(unreadable[0]).toContain('expiry out of range')
    expect(lines.join('')).not.toContain('planted-token-x1')
    // The broker wrote its own token over it, so the fleet shares a good one again.
    expect((await storedToken()).accessToken).toBe(await tokenOf(app))
  })

  it('a token with characters a header cannot carry is absent', async () => {
    const now = Date.now()
    await writeRecord({
      accessToken: 'bad\r\nX-Evil: 1',
      tokenType: 'bearer',
      mintedAt: now,
      expiresAt: now + DAY,
    })
    const app = await replica()
    expect(await tokenOf(app)).not.toContain('X-Evil')
  })
})

describe('the fleet lock is a short lease renewed by its live holder', () => {
  const store = (commandTimeoutMs?: number) =>
    redisStore({ keyPrefix: fleet.prefix, ...(commandTimeoutMs ? { commandTimeoutMs } : {}) })

  it('a live holder keeps it past its TTL; its lock never lives longer than the TTL ahead', async () => {
    const s = store()
    await s.connect()
    const lock = await s.acquire('adobe-ims', 600)
    expect(lock).toBeDefined()
    await sleep(1_500)
    expect(await admin.exists(lockKey())).toBe(1)
    expect(await admin.pttl(lockKey())).toBeLessThanOrEqual(600)
    await lock?.release()
    expect(await admin.exists(lockKey())).toBe(0)
  })

  it('a SET NX that timed out client-side is released once Redis answers again', async () => {
    const s = store(200)
    await s.connect()
    const pauser = redisClient(redisUrl)
    onTestFinished(() => pauser.quit().then(() => undefined))
    await pauser.client('PAUSE', 1_000, 'ALL')
    await expect(s.acquire('adobe-ims', 30_000)).rejects.toThrow()
    // Redis resumes and runs the SET it had received; the store deletes what it took.
    await eventually(async () => expect(await admin.exists(lockKey())).toBe(0), 5_000)
  })

  it("a holder killed mid-mint leaves a lock that ends within seconds, and the next replica's warm-up goes on", async () => {
    const config = await writeConfig(brokerDocument(fleet.sim.url))
    onTestFinished(() => config.cleanup())
    fleet.sim.behave(IMS_CLIENT_ID, { mode: 'hang' })
    const port = await freePort()
    const child = startServer({
      ...baseEnv(config.path),
      PORT: String(port),
      REDIS_URL: redisUrl,
      REDIS_KEY_PREFIX: fleet.prefix,
      LOG_LEVEL: 'warn',
    })
    onTestFinished(() => child.stop(500).then(() => undefined))
    // Its warm-up holds the lock while upstream hangs: kill it there.
    await eventually(async () => expect(await admin.exists(lockKey())).toBe(1), 15_000)
    child.signal('SIGKILL')
    await child.exited
    expect(await admin.pttl(lockKey())).toBeLessThanOrEqual(5_000)
    fleet.sim.behave(IMS_CLIENT_ID, { mode: 'ok' })
    const next = await replica()
    const ready = await next.inject({ url: '/readyz' })
    expect(ready.json().credentials['adobe-ims'].state).toBe('ok')
  })
})

describe('forced refreshes are bounded fleet-wide', () => {
  it('at most 6 forced mints per credential per minute across three replicas; then 429 with Retry-After', async () => {
    const replicas = [await replica(), await replica(), await replica()]
    const answers = []
    for (let i = 0; i < 8; i++) {
      const app = replicas[i % 3]!
      answers.push(await refresh(app, await tokenOf(app)))
      // The next caller sees the token this forced refresh produced before it asks.
      if (answers[i]!.statusCode === 200) {
        const fresh = answers[i]!.json().access_token
        await eventually(async () => expect(await tokenOf(replicas[(i + 1) % 3]!)).toBe(fresh))
      }
    }
    expect(answers.map((r) => r.statusCode)).toEqual([200, 200, 200, 200, 200, 200, 429, 429])
    const limited = answers[6]!
    expect(limited.json().code).toBe('RATE_LIMITED')
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1)
    expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(60)
    expect(fleet.sim.mints(IMS_CLIENT_ID)).toBe(1 + 6)
  })
})

describe('fleet state read from Redis is checked, not obeyed', () => {
  it('caps a failure brake longer than 10 minutes', async () => {
    const app = await replica()
    const current = await tokenOf(app)
    await admin.set(brakeKey(), `unavailable:${Date.now() + DAY}`, 'PX', DAY)
    const res = await refresh(app, current)
    expect(res.statusCode).toBe(503)
    expect(Number(res.headers['retry-after'])).toBeLessThanOrEqual(600)
  })

  it('still obeys a brake in the format the previous release wrote (no key set)', async () => {
    const app = await replica()
    const current = await tokenOf(app)
    await admin.set(brakeKey(), `rejected:${Date.now() + 20_000}`, 'PX', 20_000)
    expect((await refresh(app, current)).statusCode).toBe(502)
  })

  it('obeys a brake an earlier release signed under its own key name (prefix + "brake:" + id), not an unsigned one', async () => {
    const app = await replica({ key: true })
    const current = await tokenOf(app)
    const legacy = legacyBrakeKey(fleet.prefix, 'adobe-ims')
    const brake = `rejected:${Date.now() + 20_000}`
    await admin.set(legacy, brake, 'PX', 20_000)
    const minted = await refresh(app, current)
    expect(minted.statusCode, minted.body).toBe(200)
    await admin.set(
      legacy,
      signedBrake(Buffer.from(TEST_ENCRYPTION_KEY, 'base64'), legacy, brake),
      'PX',
      20_000,
    )
    const before = fleet.sim.mints(IMS_CLIENT_ID)
    const braked = await refresh(app, minted.json().access_token as string)
    expect(braked.json().code).toBe('UPSTREAM_REJECTED')
    expect(fleet.sim.mints(IMS_CLIENT_ID)).toBe(before)
  })

  it('does not trust a fence value in the future: the next token is stored over it', async () => {
    const app = await replica()
    const current = await tokenOf(app)
    const stored = await storedToken()
    await writeRecord({ ...stored, accessToken: 'from-the-future', mintedAt: Date.now() + DAY })
    const res = await refresh(app, current)
    expect(res.statusCode).toBe(200)
    const fresh = res.json().access_token as string
    const now = await storedToken()
    expect(now.accessToken).toBe(fresh)
    expect(Number(await admin.hget(tokenKey(), 'm'))).toBeLessThanOrEqual(Date.now())
  })

  it('with TOKEN_ENCRYPTION_KEY, a brake or fence written without the key is not obeyed', async () => {
    const [a, b] = [await replica({ key: true }), await replica({ key: true })]
    const current = await tokenOf(a)
    // Somebody with write access to Redis but not the key: a brake to freeze the fleet ...
    await admin.set(brakeKey(), `rejected:${Date.now() + 5 * 60_000}`, 'PX', 5 * 60_000)
    // ... and a fence set ahead so no replica's token would be stored or shared.
    await admin.hset(tokenKey(), 'm', String(Date.now() + 4 * 60_000))
    const res = await refresh(a, current)
    expect(res.statusCode, res.body).toBe(200)
    const fresh = res.json().access_token as string
    await eventually(async () => expect(await tokenOf(b)).toBe(fresh))
    expect((await b.store.get('adobe-ims'))?.accessToken).toBe(fresh)
  })

  it('with TOKEN_ENCRYPTION_KEY, a brake the fleet set itself is obeyed fleet-wide', async () => {
    fleet.sim.behave(IMS_CLIENT_ID, { mode: 'reject' })
    const [a, b] = [await replica({ key: true }), await replica({ key: true })]
    const before = fleet.sim.mints(IMS_CLIENT_ID)
    expect((await refresh(a, 'x')).statusCode).toBe(502)
    expect((await refresh(b, 'x')).statusCode).toBe(502)
    expect(fleet.sim.mints(IMS_CLIENT_ID)).toBe(before)
  })
})
