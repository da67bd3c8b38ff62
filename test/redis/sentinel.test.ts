import { Redis } from 'ioredis'
import { afterAll, beforeAll } from 'vitest'
import { type SentinelGroup, startSentinelGroup } from '../../tools/redis-topology.js'
import { eventually } from '../store/contract.js'
import { fleetSuite } from './fleet-suite.js'

/** The fleet behind Sentinel (a master, a replica, three sentinels), through REDIS_SENTINELS. */
let group: SentinelGroup
beforeAll(async () => {
  group = await startSentinelGroup('tb-master')
}, 60_000)
afterAll(async () => {
  await group?.stop()
})

fleetSuite('Redis behind Sentinel', () => ({
  env: () => ({
    REDIS_SENTINELS: group.sentinels.map((s) => `${s.host}:${s.port}`).join(','),
    REDIS_SENTINEL_MASTER: group.master,
  }),
  client: () => new Redis({ sentinels: group.sentinels, name: group.master }),
  async killMaster() {
    const old = await group.currentMaster()
    await old.kill()
    return {
      async takenOver() {
        await eventually(async () => {
          const now = await group.currentMaster()
          if (now.port === old.port) throw new Error('not failed over yet')
        }, 20_000)
      },
    }
  },
}))
