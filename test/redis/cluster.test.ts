import calculateSlot from 'cluster-key-slot'
import { Cluster } from 'ioredis'
import { afterAll, beforeAll } from 'vitest'
import { credentialKey } from '../../src/store/redis.js'
import { type RedisCluster, startCluster } from '../../tools/redis-topology.js'
import { eventually } from '../store/contract.js'
import { fleetSuite } from './fleet-suite.js'

/** The fleet on a Cluster of three masters with a replica each, through REDIS_CLUSTER_NODES. */
let cluster: RedisCluster
beforeAll(async () => {
  cluster = await startCluster(1)
}, 60_000)
afterAll(async () => {
  await cluster?.stop()
})

fleetSuite('a Redis Cluster', () => ({
  env: () => ({ REDIS_CLUSTER_NODES: cluster.nodes.map((n) => `${n.host}:${n.port}`).join(',') }),
  client: () => new Cluster(cluster.nodes),
  async killMaster(prefix, id) {
    const slot = calculateSlot(credentialKey(prefix, 'token', id))
    const old = await cluster.masterOf(slot)
    await old.kill()
    return {
      async takenOver() {
        await eventually(async () => {
          const now = await cluster.masterOf(slot)
          if (now.port === old.port) throw new Error('not failed over yet')
        }, 20_000)
        await cluster.waitOk()
      },
    }
  },
}))
