import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RedisTokenStore } from '../../src/store/redis.js'
import type { RedisEndpoints } from '../../src/store/redis-connection.js'
import { type AclUser, type SentinelGroup, startSentinelGroup } from '../../tools/redis-topology.js'
import { captureLog } from '../helpers/capture-log.js'
import { documentedAcl } from '../helpers/redis-acl.js'
import { uniquePrefix } from '../helpers/redis-keys.js'
import { redisStore } from '../helpers/redis-store.js'
import { eventually, makeToken, newId, storeContract } from './contract.js'

/**
 * Sentinel over TLS, as managed offerings run it: the sentinels and the data nodes on TLS ports only,
 * known by name (certificates naming `localhost` and no address, names announced), an ACL user and
 * a sentinel password. The master the sentinels name is verified by that name, before and after a
 * failover. Started once for this file.
 */
let group: SentinelGroup
let acl: AclUser
let ca: string
const sentinelPassword = `sentinel-pw-CANARY-${randomBytes(6).toString('hex')}`

beforeAll(async () => {
  acl = documentedAcl()
  group = await startSentinelGroup('tls-master', { acl, sentinelPassword, tls: true, byName: true })
  ca = group.access.tls!.ca
}, 60_000)
afterAll(async () => {
  await group?.stop()
})

const endpoints = (over: Partial<Extract<RedisEndpoints, { mode: 'sentinel' }>> = {}): RedisEndpoints => ({
  mode: 'sentinel',
  sentinels: group.sentinels,
  master: group.master,
  username: acl.username,
  password: acl.password,
  sentinelPassword,
  tls: true,
  ...over,
})

const make = (
  opts: { over?: Parameters<typeof endpoints>[0]; tls?: { ca?: string }; keyPrefix?: string } = {},
  log = captureLog(),
): RedisTokenStore =>
  redisStore({
    endpoints: endpoints(opts.over),
    describe: 'sentinel (tls)',
    keyPrefix: opts.keyPrefix ?? uniquePrefix(),
    log,
    tls: opts.tls ?? { ca },
  })

storeContract('redis behind sentinel over TLS, with an ACL user and a sentinel password', async () => {
  const s = make()
  await s.connect()
  return s
})

describe('sentinel over TLS', () => {
  it('names its certificate problem: a CA it does not trust, an address the certificate does not name', async () => {
    const untrusted = make({ tls: {} })
    await untrusted.connect(500)
    expect(untrusted.status().state).toBe('down')
    expect(await untrusted.refusal()).toMatchObject({
      kind: 'untrusted-certificate',
      detail: 'self-signed certificate in certificate chain',
    })
    const byAddress = make({ over: { sentinels: group.sentinels.map((s) => ({ ...s, host: '127.0.0.1' })) } })
    await byAddress.connect(500)
    expect(await byAddress.refusal()).toMatchObject({ kind: 'certificate-name' })
  })

  it('follows a failover to the promoted replica, verified by name: writes, reads and notifications resume', async () => {
    const prefix = uniquePrefix()
    const [writer, reader] = [make({ keyPrefix: prefix }), make({ keyPrefix: prefix })]
    await Promise.all([writer.connect(), reader.connect()])
    const seen: string[] = []
    reader.onToken((id) => seen.push(id))
    expect(await writer.put(newId(), makeToken())).toBe(true)
    const old = await group.currentMaster()
    await old.kill()
    await eventually(async () => {
      if ((await group.currentMaster()).port === old.port) throw new Error('not failed over yet')
    }, 20_000)
    // Both connections of each store (commands and the subscription) are on the new master.
    await eventually(() => {
      expect(writer.status().state).toBe('ok')
      expect(reader.status().state).toBe('ok')
    }, 15_000)
    const after = newId()
    const token = makeToken()
    expect(await writer.put(after, token)).toBe(true)
    expect(await reader.get(after)).toEqual(token)
    await eventually(() => expect(seen).toContain(after))
  }, 40_000)
})
