import Fastify from 'fastify'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import app, { serverOptions } from '../../src/app.js'
import { describeStartupError } from '../../src/config/errors.js'
import { baseEnv, brokerDocument, buildBroker, SECRETS, writeConfig } from '../helpers/broker.js'

/** Never contacted: every case here fails before warm-up. */
const SIM_URL = 'http://127.0.0.1:9'
const KEY_CANARY = Buffer.from('key-CANARY-too-short-4f1e').toString('base64')

let config: { path: string; cleanup: () => Promise<void> }
beforeAll(async () => {
  config = await writeConfig(brokerDocument(SIM_URL))
})
afterAll(async () => {
  await config.cleanup()
})

/** Builds the app as server.ts does, with `env` over a valid environment; returns the start-up line. */
async function startupLine(env: Record<string, string | undefined>): Promise<string> {
  const fastify = Fastify({ ...serverOptions(), logger: false })
  const full = { ...baseEnv(config.path), ...env }
  let err: unknown
  try {
    await fastify.register(app, { env: full })
    await fastify.ready()
  } catch (e) {
    err = e
  }
  await fastify.close().catch(() => {})
  expect(err, 'the app started with a bad environment').toBeDefined()
  const line = describeStartupError(err)
  expect(line).not.toMatch(/[\r\n]/)
  expect(line).not.toMatch(/\bat .*\(.*:\d+:\d+\)/)
  for (const secret of [...Object.values(SECRETS), KEY_CANARY]) expect(line).not.toContain(secret)
  return line
}

describe('a bad environment stops the app with one line naming the variable', () => {
  const cases: Array<[Record<string, string>, string, RegExp?]> = [
    [{ PORT: 'abc' }, 'PORT', /integer/],
    [{ PORT: '70000' }, 'PORT', /65535/],
    [{ PORT: '-1' }, 'PORT'],
    [{ PORT: '80.5' }, 'PORT'],
    [{ REFRESH_MARGIN: '2' }, 'REFRESH_MARGIN', /0\.9/],
    [{ REFRESH_MARGIN: '0' }, 'REFRESH_MARGIN'],
    [{ REFRESH_MARGIN: 'half' }, 'REFRESH_MARGIN'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL', /trace/],
    [{ REDIS_URL: 'http://x' }, 'REDIS_URL', /rediss\?/],
    [{ REDIS_URL: 'redis://' }, 'REDIS_URL'],
    [{ TOKEN_ENCRYPTION_KEY: KEY_CANARY }, 'TOKEN_ENCRYPTION_KEY', /32 bytes/],
    [{ TOKEN_ENCRYPTION_KEY: 'not base64 at all!' }, 'TOKEN_ENCRYPTION_KEY'],
    [{ TOKEN_ENCRYPTION_KEY: Buffer.alloc(33, 7).toString('base64') }, 'TOKEN_ENCRYPTION_KEY'],
    [
      {
        TOKEN_ENCRYPTION_KEY: Buffer.alloc(32, 1).toString('base64'),
        TOKEN_ENCRYPTION_OLD_KEYS: `x,${KEY_CANARY}`,
      },
      'TOKEN_ENCRYPTION_OLD_KEYS',
      /key 1: .*32 bytes/,
    ],
    [
      { TOKEN_ENCRYPTION_OLD_KEYS: Buffer.alloc(32, 1).toString('base64') },
      'TOKEN_ENCRYPTION_OLD_KEYS',
      /needs TOKEN_ENCRYPTION_KEY/,
    ],
    [{ ALLOWED_CIDRS: '10.0.0.0/99' }, 'ALLOWED_CIDRS', /prefix/],
    [{ ALLOWED_CIDRS: 'nonsense' }, 'ALLOWED_CIDRS'],
    [{ ALLOWED_CIDRS: '::1/129' }, 'ALLOWED_CIDRS'],
    [{ ALLOWED_CIDRS: ',,' }, 'ALLOWED_CIDRS'],
    [{ TRUST_PROXY: 'bogus' }, 'TRUST_PROXY'],
    [{ TRUST_PROXY: '10.0.0.0/40' }, 'TRUST_PROXY'],
    [{ ALLOW_INSECURE_UPSTREAM: 'maybe' }, 'ALLOW_INSECURE_UPSTREAM', /boolean/],
    [{ UPSTREAM_TIMEOUT_MS: '5' }, 'UPSTREAM_TIMEOUT_MS', /100/],
    [{ UPSTREAM_TIMEOUT_MS: 'soon' }, 'UPSTREAM_TIMEOUT_MS'],
    [{ BROKER_CONFIG: '/nonexistent/broker.config.json' }, 'BROKER_CONFIG', /does not exist/],
    [{ TEST_IMS_SECRET: '' }, 'credentials.adobe-ims.clientSecret', /empty/],
    [{ REDIS_URL: 'redis://127.0.0.1:9', REDIS_SENTINELS: '127.0.0.1:9' }, 'REDIS_URL, REDIS_SENTINELS'],
    [
      { REDIS_SENTINELS: '127.0.0.1:9', REDIS_CLUSTER_NODES: '127.0.0.1:9' },
      'REDIS_SENTINELS, REDIS_CLUSTER_NODES',
    ],
    [
      { REDIS_URL: 'redis://h', REDIS_SENTINELS: 'h', REDIS_CLUSTER_NODES: 'h' },
      'REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES',
    ],
    [{ REDIS_CLUSTER_NODES: '127.0.0.1:7000,host:port' }, 'REDIS_CLUSTER_NODES', /host:port/],
    [{ REDIS_SENTINELS: 'a:99999' }, 'REDIS_SENTINELS'],
    [{ REDIS_TLS: 'maybe' }, 'REDIS_TLS', /boolean/],
    [{ UPSTREAM_CONCURRENCY: '0' }, 'UPSTREAM_CONCURRENCY'],
    [{ UPSTREAM_CONCURRENCY: 'many' }, 'UPSTREAM_CONCURRENCY'],
  ]
  it.each(cases)('%j → names %s', async (env, variable, detail) => {
    const line = await startupLine(env)
    expect(line).toMatch(/^invalid configuration: /)
    expect(line).toContain(variable)
    if (detail) expect(line).toMatch(detail)
  })

  it('two Redis modes: names both, never the Redis password', async () => {
    const password = 'redis-pw-CANARY-91ac'
    const line = await startupLine({
      REDIS_URL: `redis://user:${password}@127.0.0.1:9`,
      REDIS_CLUSTER_NODES: '127.0.0.1:9',
      REDIS_PASSWORD: password,
    })
    expect(line).toMatch(/REDIS_URL, REDIS_CLUSTER_NODES/)
    expect(line).not.toContain(password)
  })

  it('an unset secret variable names the field and the variable', async () => {
    const line = await startupLine({ TEST_KEY_IMS: undefined })
    expect(line).toContain('clients.claims-service.key')
    expect(line).toContain('TEST_KEY_IMS')
  })

  it('several bad variables are all named on the one line', async () => {
    const line = await startupLine({ PORT: 'abc', LOG_LEVEL: 'loud' })
    expect(line).toContain('PORT')
    expect(line).toContain('LOG_LEVEL')
  })

  it('good values are accepted (the checks are not simply refusing everything)', async () => {
    const fastify = Fastify({ ...serverOptions(), logger: false })
    await fastify.register(app, {
      env: {
        ...baseEnv(config.path),
        PORT: '0',
        REFRESH_MARGIN: '0.5',
        LOG_LEVEL: 'silent',
        ALLOWED_CIDRS: '10.0.0.0/8, ::1',
        TRUST_PROXY: '2',
        ALLOW_INSECURE_UPSTREAM: 'true',
        UPSTREAM_TIMEOUT_MS: '100',
        TOKEN_ENCRYPTION_KEY: Buffer.alloc(32, 1).toString('base64'),
      },
    })
    await fastify.ready()
    expect(fastify.config.REFRESH_MARGIN).toBe(0.5)
    expect(fastify.config.ALLOW_INSECURE_UPSTREAM).toBe(true)
    await fastify.close()
  })
})

describe('a variable set to the empty string counts as unset', () => {
  it('every variable of the schema set empty gets its default (REDIS_URL= runs the in-memory store)', async () => {
    const lines: string[] = []
    const fastify = await buildBroker({
      simUrl: SIM_URL,
      warm: false,
      logLines: lines,
      env: {
        PORT: '',
        HOST: '',
        REDIS_URL: '',
        REDIS_KEY_PREFIX: '',
        TOKEN_ENCRYPTION_KEY: '',
        ALLOWED_CIDRS: '',
        TRUST_PROXY: '',
        REFRESH_MARGIN: '',
        UPSTREAM_TIMEOUT_MS: '',
        LOG_LEVEL: '',
        ALLOW_INSECURE_UPSTREAM: '',
      },
    })
    onTestFinished(() => fastify.close())
    expect(fastify.config).toMatchObject({
      PORT: 8080,
      HOST: '127.0.0.1',
      REDIS_KEY_PREFIX: 'token-broker:',
      ALLOWED_CIDRS: '127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7',
      TRUST_PROXY: 'false',
      REFRESH_MARGIN: 0.2,
      UPSTREAM_TIMEOUT_MS: 10_000,
      LOG_LEVEL: 'info',
      ALLOW_INSECURE_UPSTREAM: false,
    })
    expect(fastify.config.REDIS_URL).toBeUndefined()
    expect(fastify.config.TOKEN_ENCRYPTION_KEY).toBeUndefined()
    expect(lines.join('')).toContain('REDIS_URL is not set: in-memory token store')
  })

  it('an empty variable next to a bad one: only the bad one is named', async () => {
    const line = await startupLine({ REDIS_URL: '', LOG_LEVEL: '', PORT: 'abc' })
    expect(line).toBe('invalid configuration: PORT must be integer')
  })

  it('an empty secret variable is as good as unset: the field and the variable are named', async () => {
    const line = await startupLine({ TEST_KEY_ALL: '' })
    expect(line).toContain('clients.ops-tools.key')
    expect(line).toContain('TEST_KEY_ALL is not set or is empty')
  })

  it('the process environment is not merged in: only the given source counts', async () => {
    const saved = process.env.PORT
    process.env.PORT = 'not-a-port'
    onTestFinished(() => {
      if (saved === undefined) delete process.env.PORT
      else process.env.PORT = saved
    })
    const fastify = await buildBroker({ simUrl: SIM_URL, warm: false })
    onTestFinished(() => fastify.close())
    expect(fastify.config.PORT).toBe(8080)
  })
})
