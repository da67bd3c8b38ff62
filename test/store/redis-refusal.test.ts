import { describe, expect, it } from 'vitest'
import type { RedisEndpoints } from '../../src/store/redis-connection.js'
import { freePort } from '../../tools/process.js'
import { captureLog } from '../helpers/capture-log.js'
import { redisStore } from '../helpers/redis-store.js'

/**
 * An unreachable Redis is an outage (the broker starts and serves from memory: Redis down is
 * survived, docs/fleet.md), never a refusal, in every mode and with or without TLS. The refusals
 * themselves are shown on real topologies (redis-sentinel-auth, redis-sentinel-tls,
 * redis-cluster-tls, process/redis-tls).
 */
describe('an unreachable Redis is not a refusal', () => {
  const closed = async () => ({ host: '127.0.0.1', port: await freePort() })

  it.each([
    [
      'redis://',
      async (): Promise<RedisEndpoints> => ({
        mode: 'single',
        url: `redis://127.0.0.1:${(await closed()).port}`,
      }),
    ],
    [
      'rediss://',
      async (): Promise<RedisEndpoints> => ({
        mode: 'single',
        url: `rediss://u:pw-CANARY@127.0.0.1:${(await closed()).port}`,
      }),
    ],
    [
      'sentinel over TLS',
      async (): Promise<RedisEndpoints> => ({
        mode: 'sentinel',
        sentinels: [await closed(), await closed()],
        master: 'm',
        tls: true,
        password: 'pw-CANARY',
      }),
    ],
    [
      'cluster over TLS',
      async (): Promise<RedisEndpoints> => ({
        mode: 'cluster',
        nodes: [await closed()],
        tls: true,
        password: 'pw-CANARY',
      }),
    ],
  ])('%s', async (_name, endpoints) => {
    const log = captureLog()
    const s = redisStore({ endpoints: await endpoints(), describe: 'closed', log })
    await s.connect(300)
    expect(s.status().state).toBe('down')
    expect(await s.refusal()).toBeUndefined()
    expect(log.lines.filter((l) => l.level === 'error')).toEqual([])
    expect(log.text()).not.toContain('pw-CANARY')
  })
})
