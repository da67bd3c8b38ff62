import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest'
import { parseEncryptionKey } from '../../src/config/encryption-keys.js'
import { createSimulator, type Simulator } from '../../src/simulator/server.js'
import { createCipher, createKeyring, keyIdOf } from '../../src/store/crypto.js'
import { auth, brokerDocument, buildBroker, EQP_APP_ID, IMS_CLIENT_ID, SECRETS } from '../helpers/broker.js'
import { captureLog } from '../helpers/capture-log.js'
import { useFleet } from '../helpers/fleet.js'
import { deleteKeys, escapeGlob, redisClient, scanKeys, uniquePrefix } from '../helpers/redis-keys.js'
import { redisStore } from '../helpers/redis-store.js'
import { eventually } from '../store/contract.js'

const redisUrl = inject('redisUrl')
// Tests only: base64 of 32 bytes each.
const OLD_KEY = Buffer.alloc(32, 0x11).toString('base64')
const NEW_KEY = Buffer.alloc(32, 0x22).toString('base64')
const IDS = ['adobe-ims', 'marketplace']

/** The three phases of a rolling key rotation, each rolled out one replica at a time. */
const PHASES: Record<string, string>[] = [
  { TOKEN_ENCRYPTION_KEY: OLD_KEY, TOKEN_ENCRYPTION_OLD_KEYS: NEW_KEY }, // 1. the new key readable everywhere
  { TOKEN_ENCRYPTION_KEY: NEW_KEY, TOKEN_ENCRYPTION_OLD_KEYS: OLD_KEY }, // 2. the new key seals everywhere
  { TOKEN_ENCRYPTION_KEY: NEW_KEY }, // 3. the old key dropped
]

describe('rolling encryption key rotation on three replicas sharing Redis', () => {
  const fleet = useFleet({
    env: () => ({ REDIS_URL: redisUrl }),
    cleanup: (prefix) => deleteKeys(redisUrl, prefix),
  })

  it('no failed caller request, no extra mint, every stored value sealed with the new key at the end', async () => {
    // The replicas the load balancer sends callers to: one at a time is out, restarting.
    const serving: (FastifyInstance | undefined)[] = await Promise.all(
      [0, 1, 2].map(() => fleet.replica({ TOKEN_ENCRYPTION_KEY: OLD_KEY })),
    )
    const { sim } = fleet
    const mintsBefore = { ims: sim.mints(IMS_CLIENT_ID), eqp: sim.mints(EQP_APP_ID) }
    expect(mintsBefore).toEqual({ ims: 1, eqp: 1 })

    // Callers keep asking every live replica (a load balancer skips the one restarting).
    const answers: number[] = []
    let calling = true
    // The round in progress: a replica leaves the rotation, then its in-flight requests finish (drain).
    let round: Promise<void> = Promise.resolve()
    const callers = (async () => {
      for (let i = 0; calling; i++) {
        const app = serving[i % 3]
        round = (async () => {
          if (!app) return
          for (const id of IDS) {
            const res = await app.inject({ url: `/v1/tokens/${id}`, headers: auth(SECRETS.keyAll) })
            answers.push(res.statusCode)
          }
        })()
        await round
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
    })()

    for (const env of PHASES) {
      for (let i = 0; i < 3; i++) {
        const old = serving[i]
        serving[i] = undefined
        await round
        await old?.close()
        const next = await fleet.replica(env)
        expect((await next.inject({ url: '/readyz' })).statusCode).toBe(200)
        serving[i] = next
      }
    }
    calling = false
    await callers

    expect(answers.length).toBeGreaterThan(20)
    expect(answers.filter((s) => s !== 200)).toEqual([])
    // Over the whole rotation: no extra mint (the promise allows one per credential).
    const extra = {
      ims: sim.mints(IMS_CLIENT_ID) - mintsBefore.ims,
      eqp: sim.mints(EQP_APP_ID) - mintsBefore.eqp,
    }
    expect(extra.ims).toBeLessThanOrEqual(1)
    expect(extra.eqp).toBeLessThanOrEqual(1)

    // Every stored value carries the new key's id and opens with the new key alone.
    const redis = redisClient(redisUrl)
    try {
      const keys = await scanKeys(redis, `${escapeGlob(fleet.prefix)}*:token`)
      expect(keys.sort()).toEqual(IDS.map((id) => `${fleet.prefix}{${id}}:token`).sort())
      const newOnly = createKeyring(parseEncryptionKey(NEW_KEY))
      for (const key of keys) {
        const h = await redis.hgetall(key)
        expect(h.k).toBe(keyIdOf(parseEncryptionKey(NEW_KEY)))
        expect(newOnly.open(h.v!, key).current).toBe(true)
        expect(() => createCipher(parseEncryptionKey(OLD_KEY)).open(h.v!, key)).toThrow()
      }
    } finally {
      await redis.quit()
    }
  })
})

describe('the stored format across releases', () => {
  let prefix: string
  beforeEach(() => {
    prefix = uniquePrefix()
  })
  afterEach(() => deleteKeys(redisUrl, prefix))

  const legacyRecord = (expiresAt: number, mintedAt: number) =>
    JSON.stringify({ accessToken: 'legacy-token', tokenType: 'bearer', expiresAt, mintedAt })

  // Under the key name of releases before hash tags (prefix + "token:" + id): read as a fallback.
  it("reads a value in today's format (no key id, no generation), sealed or plain", async () => {
    const log = captureLog()
    const redis = redisClient(redisUrl)
    const mintedAt = Date.now() - 1000
    const expiresAt = Date.now() + 3_600_000
    const sealedKey = `${prefix}token:sealed`
    const plainKey = `${prefix}token:plain`
    await redis.hset(sealedKey, {
      m: String(mintedAt),
      v: createCipher(parseEncryptionKey(OLD_KEY)).seal(legacyRecord(expiresAt, mintedAt), sealedKey),
    })
    await redis.hset(plainKey, { m: String(mintedAt), v: legacyRecord(expiresAt, mintedAt) })
    const store = redisStore({
      keyPrefix: prefix,
      encryptionKey: parseEncryptionKey(NEW_KEY),
      oldEncryptionKeys: [parseEncryptionKey(OLD_KEY)],
      log,
    })
    const plainStore = redisStore({ keyPrefix: prefix, log })
    try {
      await store.connect()
      await plainStore.connect()
      expect(await store.get('sealed')).toEqual({
        accessToken: 'legacy-token',
        tokenType: 'bearer',
        expiresAt,
        mintedAt,
      })
      expect((await plainStore.get('plain'))?.accessToken).toBe('legacy-token')
      // Read under an old key: re-sealed with the current one, the record otherwise unchanged.
      await eventually(async () =>
        expect((await redis.hget(sealedKey, 'k')) ?? '').toBe(keyIdOf(parseEncryptionKey(NEW_KEY))),
      )
      expect(await redis.hget(sealedKey, 'm')).toBe(String(mintedAt))
      // A newer token still replaces a legacy one (no generation counts as the oldest).
      const next = { accessToken: 'next', tokenType: 'bearer', expiresAt, mintedAt: mintedAt + 1 }
      expect(await store.put('sealed', next)).toBe(true)
    } finally {
      await redis.quit()
    }
  })

  it('a value no configured key opens is absent, logged once without content', async () => {
    const log = captureLog()
    const writer = redisStore({ keyPrefix: prefix, encryptionKey: parseEncryptionKey(OLD_KEY), log })
    const reader = redisStore({ keyPrefix: prefix, encryptionKey: parseEncryptionKey(NEW_KEY), log })
    await writer.connect()
    await reader.connect()
    const now = Date.now()
    await writer.put('x', {
      accessToken: 'sealed-CANARY',
      tokenType: 'bearer',
      expiresAt: now + 60_000,
      mintedAt: now,
    })
    log.lines.length = 0
    expect(await reader.get('x')).toBeUndefined()
    expect(await reader.get('x')).toBeUndefined()
    const warns = log.lines.filter((l) => l.level === 'warn')
    expect(warns).toHaveLength(1)
    expect(warns[0]?.msg).toContain('treated as absent')
    expect(log.text()).not.toContain('CANARY')
  })
})

describe('generation fence across two replicas', () => {
  let dir: string
  let sim: Simulator
  let prefix: string
  let apps: FastifyInstance[] = []
  const OLD = 'ims-secret-CANARY-gen-old'
  const NEW = 'ims-secret-CANARY-gen-new'

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'token-broker-gen-'))
    prefix = uniquePrefix()
    sim = createSimulator({ secrets: { [IMS_CLIENT_ID]: [OLD, NEW], [EQP_APP_ID]: SECRETS.eqp } })
    await sim.listen()
  })
  afterEach(async () => {
    await Promise.all(apps.map((app) => app.close()))
    apps = []
    await sim.close()
    await deleteKeys(redisUrl, prefix)
    await rm(dir, { recursive: true, force: true })
  })

  it("a slow mint with the old secret, finishing after a reload's mint with the new one, does not replace it", async () => {
    const replica = async (name: string) => {
      const secretFile = join(dir, `${name}-secret`)
      await writeFile(secretFile, OLD)
      const doc = brokerDocument(sim.url)
      ;(doc.credentials['adobe-ims'] as { clientSecret: unknown }).clientSecret = { file: secretFile }
      const configPath = join(dir, `${name}.json`)
      await writeFile(configPath, JSON.stringify(doc))
      const app = await buildBroker({
        simUrl: sim.url,
        env: {
          BROKER_CONFIG: configPath,
          REDIS_URL: redisUrl,
          REDIS_KEY_PREFIX: prefix,
          TOKEN_ENCRYPTION_KEY: NEW_KEY,
        },
      })
      apps.push(app)
      return { app, secretFile }
    }
    const a = await replica('a')
    const b = await replica('b')
    const first = b.app.tokens.peek('adobe-ims', 0)!.accessToken

    // B starts a slow mint with the old secret (it holds the fleet lock meanwhile).
    sim.behave(IMS_CLIENT_ID, { latencyMs: 1_500 })
    const slow = b.app.inject({
      method: 'POST',
      url: '/v1/tokens/adobe-ims/refresh',
      headers: auth(SECRETS.keyAll),
      payload: { rejected_token: first },
    })
    await eventually(async () => expect(sim.mints(IMS_CLIENT_ID)).toBe(2))
    sim.behave(IMS_CLIENT_ID, { latencyMs: 0 })

    // A reloads with the new secret: it mints at once, without waiting for B's lock.
    await writeFile(a.secretFile, NEW)
    expect(await a.app.reloadConfig('SIGHUP')).toBe(true)
    const fresh = a.app.tokens.peek('adobe-ims', 0)!.accessToken
    expect(fresh).not.toBe(first)
    expect(sim.mints(IMS_CLIENT_ID)).toBe(3)

    // B's slow mint lands afterwards: fenced, and B takes A's token.
    const res = await slow
    expect(res.statusCode).toBe(200)
    expect(sim.issued(IMS_CLIENT_ID)).toBe(3)
    expect((await a.app.store.get('adobe-ims'))?.accessToken).toBe(fresh)
    expect(res.json().access_token).toBe(fresh)
    await eventually(async () => expect(b.app.tokens.peek('adobe-ims', 0)?.accessToken).toBe(fresh))
  })
})
