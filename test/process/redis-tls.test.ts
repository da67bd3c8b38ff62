import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import type { Simulator } from '../../src/simulator/server.js'
import { freePort, waitForStatus } from '../../tools/process.js'
import { startTlsRedis, type TlsRedis } from '../../tools/redis-topology.js'
import { auth, baseEnv, brokerDocument, SECRETS, startSimulator } from '../helpers/broker.js'
import { type CertDir, certDir } from '../helpers/certs.js'
import { documentedAcl } from '../helpers/redis-acl.js'
import { uniquePrefix } from '../helpers/redis-keys.js'
import { startServer } from '../helpers/server-process.js'

/**
 * server.ts on `rediss://` with an ACL user, as on a managed Redis whose certificate a private CA
 * signed: the CA reaches the process only through NODE_EXTRA_CA_CERTS (the broker has no Redis CA
 * setting of its own). One TLS Redis for this file.
 */
let redis: TlsRedis
let sim: Simulator
let certs: CertDir
let configPath: string

beforeAll(async () => {
  redis = await startTlsRedis(documentedAcl().rules)
  sim = await startSimulator()
  certs = await certDir()
  configPath = join(certs.dir, 'broker.config.json')
  await writeFile(configPath, JSON.stringify(brokerDocument(sim.url)))
}, 60_000)
afterAll(async () => {
  await sim?.close()
  await redis?.stop()
  await certs?.remove()
})

const start = async (env: Record<string, string>) => {
  const port = await freePort()
  const child = startServer({ ...baseEnv(configPath), LOG_LEVEL: 'info', PORT: String(port), ...env })
  onTestFinished(() => child.stop().then(() => undefined))
  return { child, url: `http://127.0.0.1:${port}` }
}

/** Neither the Redis password nor a secret of the broker anywhere in what the process wrote. */
const expectNoSecret = (output: string) => {
  for (const secret of [redis.password, 'WRONG-CANARY', ...Object.values(SECRETS)]) {
    expect(output).not.toContain(secret)
  }
}

/** The one line the process printed before exiting 1. */
const refusedLine = async (child: Awaited<ReturnType<typeof start>>['child']) => {
  const exit = await child.exited
  expect(exit.code, child.output()).toBe(1)
  const lines = child
    .stderr()
    .split('\n')
    .filter((l) => l !== '')
  expect(lines, child.stderr()).toHaveLength(1)
  expectNoSecret(child.output())
  return lines[0]
}

describe('the server process on rediss:// with an ACL user', () => {
  it('trusts the CA given in NODE_EXTRA_CA_CERTS: ready, and its tokens are in Redis', async () => {
    const prefix = uniquePrefix()
    const { child, url } = await start({
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: prefix,
      NODE_EXTRA_CA_CERTS: redis.caFile,
    })
    await waitForStatus(`${url}/readyz`, { child, timeoutMs: 20_000 })
    const ready = await (await fetch(`${url}/readyz`)).json()
    expect(ready).toMatchObject({ status: 'ready', store: { kind: 'redis', state: 'ok' } })
    const res = await fetch(`${url}/v1/tokens/adobe-ims`, { headers: auth(SECRETS.keyAll) })
    const { access_token: token } = (await res.json()) as { access_token: string }

    const reader = new Redis(redis.url, { tls: { ca: redis.ca }, maxRetriesPerRequest: 1 })
    onTestFinished(() => reader.disconnect())
    const stored = await reader.hgetall(`${prefix}{adobe-ims}:token`)
    expect(JSON.parse(stored.v ?? '{}')).toMatchObject({ accessToken: token })
    expect(child.output()).toContain('redis store connected')
    expectNoSecret(child.output())
  })

  it('without NODE_EXTRA_CA_CERTS, stops at start naming the untrusted certificate and the variable', async () => {
    const { child } = await start({ REDIS_URL: redis.url })
    expect(await refusedLine(child)).toBe(
      "token-broker: invalid configuration: Redis's TLS certificate is not trusted " +
        '(self-signed certificate in certificate chain); ' +
        "if a private CA signed it, name that CA's PEM file in NODE_EXTRA_CA_CERTS",
    )
  })

  it('with a wrong password, stops at start naming REDIS_URL', async () => {
    const wrong = new URL(redis.url)
    wrong.password = 'WRONG-CANARY'
    const { child } = await start({ REDIS_URL: wrong.toString(), NODE_EXTRA_CA_CERTS: redis.caFile })
    expect(await refusedLine(child)).toBe(
      'token-broker: invalid configuration: Redis refused the user and password of REDIS_URL ' +
        '(WRONGPASS invalid username-password pair or user is disabled.)',
    )
  })

  it('with a key prefix outside what its ACL user may touch, stops at start naming REDIS_KEY_PREFIX', async () => {
    const { child } = await start({
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: 'not-in-the-acl:',
      NODE_EXTRA_CA_CERTS: redis.caFile,
    })
    expect(await refusedLine(child)).toBe(
      'token-broker: invalid configuration: the Redis ACL user lacks a permission the broker needs ' +
        '(NOPERM this user has no permissions to access one of the channels used as arguments); ' +
        'it must be allowed the keys and channels under REDIS_KEY_PREFIX',
    )
  })
})
