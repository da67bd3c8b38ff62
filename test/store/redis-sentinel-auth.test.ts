import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { describeStartupError } from '../../src/config/errors.js'
import type { RedisTokenStore } from '../../src/store/redis.js'
import type { RedisEndpoints } from '../../src/store/redis-connection.js'
import { type AclUser, type SentinelGroup, startSentinelGroup } from '../../tools/redis-topology.js'
import { auth, buildBroker, SECRETS, startSimulator } from '../helpers/broker.js'
import { captureLog } from '../helpers/capture-log.js'
import { documentedAcl } from '../helpers/redis-acl.js'
import { uniquePrefix } from '../helpers/redis-keys.js'
import { redisStore } from '../helpers/redis-store.js'
import { storeContract } from './contract.js'

/**
 * Sentinel with passwords, as managed and self-run groups are set up: the data nodes with the
 * default user off and the broker's ACL user (the rules the docs give), the sentinels with a
 * password of their own. Started once for this file.
 */
let group: SentinelGroup
let acl: AclUser
const sentinelPassword = `sentinel-pw-CANARY-${randomBytes(6).toString('hex')}`

beforeAll(async () => {
  acl = documentedAcl()
  group = await startSentinelGroup('auth-master', { acl, sentinelPassword })
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
  tls: false,
  ...over,
})

const make = (over: Parameters<typeof endpoints>[0] = {}, log = captureLog()): RedisTokenStore =>
  redisStore({ endpoints: endpoints(over), describe: 'sentinel', log })

/** No password of this file in `text`, nor the wrong ones tried. */
const expectNoPassword = (text: string) => {
  for (const pw of [acl.password, sentinelPassword, 'WRONG-CANARY']) expect(text).not.toContain(pw)
}

storeContract('redis behind sentinel, with an ACL user and a sentinel password', async () => {
  const s = make()
  await s.connect()
  return s
})

describe('sentinel with passwords: refusals', () => {
  it.each([
    ['the data nodes refuse a wrong ACL password', { password: 'WRONG-CANARY' }, 'credentials'],
    [
      'the sentinels refuse a wrong sentinel password',
      { sentinelPassword: 'WRONG-CANARY' },
      'sentinel-credentials',
    ],
    [
      'the sentinels refuse a client without their password',
      { sentinelPassword: undefined },
      'sentinel-credentials',
    ],
  ] as const)('%s: the store says which, at once, without a password', async (_name, over, kind) => {
    const log = captureLog()
    const s = make(over, log)
    const t0 = Date.now()
    await s.connect(5000)
    // A refusal ends the wait: waiting would not cure it.
    expect(Date.now() - t0).toBeLessThan(4000)
    expect(s.status().state).toBe('down')
    expect(await s.refusal()).toMatchObject({ kind })
    expect(log.lines.filter((l) => l.level === 'error').map((l) => l.msg)).toEqual([
      'redis refused this replica; check its Redis settings',
    ])
    expectNoPassword(log.text())
  })
})

describe('the app on sentinel with passwords', () => {
  const env = (over: Record<string, string> = {}) => ({
    REDIS_SENTINELS: group.sentinels.map((s) => `${s.host}:${s.port}`).join(','),
    REDIS_SENTINEL_MASTER: group.master,
    REDIS_USERNAME: acl.username,
    REDIS_PASSWORD: acl.password,
    REDIS_SENTINEL_PASSWORD: sentinelPassword,
    REDIS_KEY_PREFIX: uniquePrefix(),
    ...over,
  })
  /** The line server.ts would print before exiting 1, and every log line written meanwhile. */
  const refusedStart = async (over: Record<string, string>) => {
    const logLines: string[] = []
    const err = await buildBroker({ simUrl: 'http://127.0.0.1:9', env: env(over), logLines }).then(
      () => expect.unreachable('the app started'),
      (e: unknown) => e,
    )
    const line = describeStartupError(err)
    expect(line).not.toMatch(/[\r\n]/)
    expectNoPassword(line)
    expectNoPassword(logLines.join(''))
    return line
  }

  it('starts, connected, and stores its tokens behind the sentinels', async () => {
    const sim = await startSimulator()
    onTestFinished(() => sim.close())
    const e = env()
    const app = await buildBroker({ simUrl: sim.url, env: e })
    onTestFinished(() => app.close())
    const ready = await app.inject({ url: '/readyz' })
    expect(ready.json()).toMatchObject({ status: 'ready', store: { kind: 'redis', state: 'ok' } })
    const token = (await app.inject({ url: '/v1/tokens/adobe-ims', headers: auth(SECRETS.keyAll) })).json()
    // Another store on the same prefix reads it from the master the sentinels name.
    const reader = redisStore({ endpoints: endpoints(), keyPrefix: e.REDIS_KEY_PREFIX })
    await reader.connect()
    expect((await reader.get('adobe-ims'))?.accessToken).toBe(token.access_token)
  })

  it('refuses to start with a wrong REDIS_PASSWORD, naming the variables', async () => {
    expect(await refusedStart({ REDIS_PASSWORD: 'WRONG-CANARY' })).toBe(
      'invalid configuration: Redis refused REDIS_USERNAME and REDIS_PASSWORD ' +
        '(WRONGPASS invalid username-password pair or user is disabled.)',
    )
  })

  it('refuses to start with a wrong or missing REDIS_SENTINEL_PASSWORD, naming it', async () => {
    expect(await refusedStart({ REDIS_SENTINEL_PASSWORD: 'WRONG-CANARY' })).toBe(
      'invalid configuration: the Redis Sentinels refused REDIS_SENTINEL_PASSWORD ' +
        '(WRONGPASS invalid username-password pair or user is disabled.)',
    )
    expect(await refusedStart({ REDIS_SENTINEL_PASSWORD: '' })).toBe(
      'invalid configuration: the Redis Sentinels refused REDIS_SENTINEL_PASSWORD (NOAUTH Authentication required.)',
    )
  })
})
