import { describe, expect, inject, it, onTestFinished } from 'vitest'
import { buildBroker } from '../helpers/broker.js'
import { deleteKeys, uniquePrefix } from '../helpers/redis-keys.js'

/** Never contacted: warm-up is not awaited and no credential is asked for. */
const SIM_URL = 'http://127.0.0.1:9'
const PASSWORD = 'redis-password-CANARY-6b0e2d'
const SENTINEL_PASSWORD = 'sentinel-password-CANARY-93c4aa'

interface Line {
  level: number
  msg: string
  ignored?: string[]
}

/** The real app with `env`: its start-up warnings that name ignored variables, and the whole log text. */
async function startWith(env: Record<string, string>): Promise<{ ignored: Line[]; text: string }> {
  const lines: string[] = []
  // With Redis, a prefix of its own: the warm-up's failed mints leave brakes behind.
  const prefix = uniquePrefix()
  if (env.REDIS_URL !== undefined) onTestFinished(() => deleteKeys(inject('redisUrl'), prefix))
  const app = await buildBroker({
    simUrl: SIM_URL,
    warm: false,
    logLines: lines,
    env: { REDIS_KEY_PREFIX: prefix, ...env },
  })
  onTestFinished(() => app.close())
  const parsed = lines.map((l) => JSON.parse(l) as Line)
  return { ignored: parsed.filter((l) => l.ignored !== undefined), text: lines.join('') }
}

describe('Redis variables the chosen mode does not read: one start-up warning, names only', () => {
  it('REDIS_URL carries its own user, password and scheme; the Sentinel settings need REDIS_SENTINELS', async () => {
    const { ignored, text } = await startWith({
      REDIS_URL: inject('redisUrl'),
      REDIS_USERNAME: 'broker',
      REDIS_PASSWORD: PASSWORD,
      REDIS_TLS: 'true',
      REDIS_SENTINEL_MASTER: 'tokens',
      REDIS_SENTINEL_PASSWORD: SENTINEL_PASSWORD,
    })
    expect(ignored).toEqual([
      expect.objectContaining({
        level: 40,
        ignored: ['REDIS_USERNAME', 'REDIS_PASSWORD', 'REDIS_TLS'],
        msg: expect.stringMatching(/^REDIS_USERNAME, REDIS_PASSWORD, REDIS_TLS ignored: REDIS_URL carries/),
      }),
      expect.objectContaining({
        level: 40,
        ignored: ['REDIS_SENTINEL_MASTER', 'REDIS_SENTINEL_PASSWORD'],
        msg: expect.stringMatching(
          /^REDIS_SENTINEL_MASTER, REDIS_SENTINEL_PASSWORD ignored: .*REDIS_SENTINELS/,
        ),
      }),
    ])
    // Still ignored, not refused: the store runs on REDIS_URL.
    expect(text).toContain('redis store connected')
    expect(text).not.toContain(PASSWORD)
    expect(text).not.toContain(SENTINEL_PASSWORD)
  })

  it('without a Redis mode, every Redis setting is ignored (the store is in memory)', async () => {
    const { ignored, text } = await startWith({
      REDIS_PASSWORD: PASSWORD,
      REDIS_SENTINEL_PASSWORD: SENTINEL_PASSWORD,
    })
    expect(ignored).toEqual([
      expect.objectContaining({
        level: 40,
        ignored: ['REDIS_PASSWORD', 'REDIS_SENTINEL_PASSWORD'],
        msg: expect.stringContaining('no Redis mode is set'),
      }),
    ])
    expect(text).not.toContain(PASSWORD)
    expect(text).not.toContain(SENTINEL_PASSWORD)
  })

  it('says nothing when every Redis variable set is read (a default is not a setting)', async () => {
    const { ignored } = await startWith({ REDIS_URL: inject('redisUrl') })
    expect(ignored).toEqual([])
  })
})
