import calculateSlot from 'cluster-key-slot'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { credentialKey, type RedisTokenStore } from '../../src/store/redis.js'
import type { RedisEndpoints } from '../../src/store/redis-connection.js'
import { type AclUser, type RedisCluster, startCluster } from '../../tools/redis-topology.js'
import { captureLog } from '../helpers/capture-log.js'
import { documentedAcl } from '../helpers/redis-acl.js'
import { uniquePrefix } from '../helpers/redis-keys.js'
import { redisStore } from '../helpers/redis-store.js'
import { eventually, makeToken, newId, storeContract } from './contract.js'

/**
 * A Cluster as managed offerings run it: three masters on TLS ports only (the bus on TLS too),
 * known by name (certificates naming `localhost` and no address; CLUSTER SLOTS answers names), and
 * the broker's ACL user with the rules the docs give. Started once for this file.
 */
let cluster: RedisCluster
let acl: AclUser
let ca: string

beforeAll(async () => {
  acl = documentedAcl()
  cluster = await startCluster(0, { acl, tls: true, byName: true })
  ca = cluster.access.tls!.ca
}, 60_000)
afterAll(async () => {
  await cluster?.stop()
})

const make = (
  opts: {
    over?: Partial<Extract<RedisEndpoints, { mode: 'cluster' }>>
    tls?: object
    keyPrefix?: string
  } = {},
  log = captureLog(),
): RedisTokenStore =>
  redisStore({
    endpoints: {
      mode: 'cluster',
      nodes: cluster.nodes,
      username: acl.username,
      password: acl.password,
      tls: true,
      ...opts.over,
    },
    describe: 'cluster (tls)',
    keyPrefix: opts.keyPrefix ?? uniquePrefix(),
    log,
    tls: opts.tls ?? { ca },
  })

storeContract('redis cluster over TLS with an ACL user', async () => {
  const s = make()
  await s.connect(5000)
  return s
})

describe('a cluster over TLS with an ACL user', () => {
  it('reaches every master by name, and a write on any reaches a replica subscribed elsewhere', async () => {
    // Seed nodes by name only: their certificates name no address (a managed configuration endpoint).
    expect(cluster.nodes.every((n) => n.host === 'localhost')).toBe(true)
    const prefix = uniquePrefix()
    const [a, b] = [make({ keyPrefix: prefix }), make({ keyPrefix: prefix })]
    await Promise.all([a.connect(5000), b.connect(5000)])
    const seen: string[] = []
    b.onToken((id) => seen.push(id))
    const ids = Array.from({ length: 30 }, newId)
    const masters = new Set<number>()
    for (const id of ids) {
      expect(await a.put(id, makeToken())).toBe(true)
      masters.add((await cluster.masterOf(calculateSlot(credentialKey(prefix, 'token', id)))).port)
    }
    expect(masters.size).toBe(3)
    await eventually(() => expect(seen.sort()).toEqual([...ids].sort()))
    expect((await b.getMany(ids)).size).toBe(30)
  })

  it('names what it was refused: the password, the CA, a seed address the certificate does not name', async () => {
    const log = captureLog()
    const wrong = make({ over: { password: 'WRONG-CANARY' } }, log)
    await wrong.connect(5000)
    expect(await wrong.refusal()).toEqual({
      kind: 'credentials',
      detail: 'WRONGPASS invalid username-password pair or user is disabled.',
    })
    // ioredis's own message names no reason ("Failed to refresh slots cache."): the node's is added.
    expect(log.text()).toContain('Last error: WRONGPASS')
    for (const pw of [acl.password, 'WRONG-CANARY']) expect(log.text()).not.toContain(pw)

    const untrusted = make({ tls: {} })
    await untrusted.connect(500)
    expect(await untrusted.refusal()).toMatchObject({ kind: 'untrusted-certificate' })
    const byAddress = make({ over: { nodes: cluster.nodes.map((n) => ({ ...n, host: '127.0.0.1' })) } })
    await byAddress.connect(500)
    expect(await byAddress.refusal()).toMatchObject({ kind: 'certificate-name' })
  })
})
