import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import type { RedisTokenStore } from '../../src/store/redis.js'
import { startTlsRedis, type TlsRedis } from '../../tools/redis-topology.js'
import { captureLog } from '../helpers/capture-log.js'
import { redisStore } from '../helpers/redis-store.js'
import { storeContract } from './contract.js'

/** The store on a TLS-only Redis with an ACL user (the default user off), started once for this file. */
let server: TlsRedis

beforeAll(async () => {
  server = await startTlsRedis()
}, 60_000)
afterAll(async () => {
  await server?.stop()
})

const make = (url = server.url, log = captureLog()): RedisTokenStore =>
  redisStore({ url, log, tls: { ca: server.ca } })

storeContract('redis over TLS with an ACL user', async () => {
  const s = make()
  await s.connect()
  return s
})

describe('redis store over TLS', () => {
  it('is refused without the ACL password, and says so without the password', async () => {
    const log = captureLog()
    const wrong = new URL(server.url)
    wrong.password = 'not-the-password-CANARY'
    const s = make(wrong.toString(), log)
    await s.connect(1000)
    expect(s.status().state).toBe('down')
    expect(log.text()).not.toContain('not-the-password-CANARY')
    expect(log.text()).not.toContain(server.password)
  })

  it('is refused in plain text: the port speaks TLS only', async () => {
    const plain = new Redis({
      port: server.port,
      host: '127.0.0.1',
      lazyConnect: true,
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
      connectTimeout: 1000,
    })
    plain.on('error', () => {})
    onTestFinished(() => plain.disconnect())
    await expect(plain.connect().then(() => plain.ping())).rejects.toBeInstanceOf(Error)
  })
})
