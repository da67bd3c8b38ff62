import type { FastifyInstance } from 'fastify'
import { afterEach, beforeEach, expect } from 'vitest'
import type { Simulator } from '../../src/simulator/server.js'
import { auth, buildBroker, SECRETS, startSimulator, type TestBrokerOptions } from './broker.js'
import { uniquePrefix } from './redis-keys.js'

/** A TOKEN_ENCRYPTION_KEY for tests only (base64 of 32 bytes). */
export const TEST_ENCRYPTION_KEY = 'ZGVtby1vbmx5LWtleS1ub3QtZm9yLXByb2R1Y3Rpb24='

export interface FleetOptions {
  /** What every replica's environment adds to the credentials: the Redis topology, a key... */
  env: () => Record<string, string>
  /** After each test, once its replicas and simulator have closed (e.g. delete the test's keys). */
  cleanup?: (prefix: string) => Promise<void>
}

export interface Fleet {
  /** This test's simulator, accepting the canary secrets. */
  readonly sim: Simulator
  /** This test's key prefix (REDIS_KEY_PREFIX of every replica). */
  readonly prefix: string
  /** One replica of the real app, warmed unless `opts.warm` is false; closed after the test. */
  replica(
    env?: Record<string, string>,
    opts?: Omit<TestBrokerOptions, 'simUrl' | 'env'>,
  ): Promise<FastifyInstance>
  /**
   * Three replicas built without warming, then warmed together: a concurrent cold start. The array
   * is the fleet's own: `restart` replaces a replica in it.
   */
  start(env?: Record<string, string>): Promise<FastifyInstance[]>
  /** Closes replica `i` of the started three and starts another (warmed) in its place, as a restart does. */
  restart(i: number): Promise<FastifyInstance>
}

/**
 * Replicas of the real app sharing a Redis, each test with a simulator and a key prefix of its own;
 * every replica is closed after the test. Call it in a describe block (it registers the hooks).
 */
export function useFleet(opts: FleetOptions): Fleet {
  let sim: Simulator | undefined
  let prefix = ''
  let built: FastifyInstance[] = []
  const apps: FastifyInstance[] = []

  beforeEach(async () => {
    sim = await startSimulator()
    prefix = uniquePrefix()
  })
  afterEach(async () => {
    // Closing twice is harmless: a test may already have closed some.
    await Promise.all(built.map((app) => app.close()))
    built = []
    apps.length = 0
    await sim?.close()
    await opts.cleanup?.(prefix)
  })

  const fleet: Fleet = {
    get sim() {
      if (!sim) throw new Error('the fleet exists only within a test')
      return sim
    },
    get prefix() {
      return prefix
    },
    async replica(env = {}, more = {}) {
      const app = await buildBroker({
        ...more,
        simUrl: fleet.sim.url,
        env: { ...opts.env(), REDIS_KEY_PREFIX: prefix, ...env },
      })
      built.push(app)
      return app
    },
    async start(env = {}) {
      const started = await Promise.all([0, 1, 2].map(() => fleet.replica(env, { warm: false })))
      await Promise.all(started.map((app) => app.tokens.start()))
      apps.splice(0, apps.length, ...started)
      return apps
    },
    async restart(i) {
      await apps[i]?.close()
      const app = await fleet.replica()
      apps[i] = app
      return app
    },
  }
  return fleet
}

/** GET /v1/tokens/{id} with the all-credentials key. */
export const askToken = (app: FastifyInstance, id = 'adobe-ims') =>
  app.inject({ url: `/v1/tokens/${id}`, headers: auth(SECRETS.keyAll) })

/** The token `app` serves for `id`; anything but a 200 fails the test. */
export async function tokenOf(app: FastifyInstance, id = 'adobe-ims'): Promise<string> {
  const res = await askToken(app, id)
  expect(res.statusCode, res.body).toBe(200)
  return res.json().access_token as string
}

/** POST /v1/tokens/{id}/refresh, naming `rejected` as the token upstream refused when given. */
export const refresh = (app: FastifyInstance, rejected?: string, id = 'adobe-ims') =>
  app.inject({
    method: 'POST',
    url: `/v1/tokens/${id}/refresh`,
    headers: { ...auth(SECRETS.keyAll), 'content-type': 'application/json' },
    payload: rejected === undefined ? '' : { rejected_token: rejected },
  })
