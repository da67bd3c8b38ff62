import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createSimulator, type Simulator } from '../../src/simulator/server.js'
import { auth, buildBroker, IMS_CLIENT_ID } from '../helpers/broker.js'

const FIRST = 'ims-secret-CANARY-first'
const SECOND = 'ims-secret-CANARY-second'
const KEY = 'ops-key-CANARY-fallback'
const WARNING = 'minting with a secret other than the first'

/** A credential with two client secrets (files, as mounted secrets are), through the real app. */
describe('secret lists: fallback to the next secret', () => {
  let dir: string
  let sim: Simulator
  let app: FastifyInstance
  let logLines: string[]

  const file = (name: string) => join(dir, name)
  const writeDocument = (order: string[]) =>
    writeFile(
      file('broker.config.json'),
      JSON.stringify({
        credentials: {
          'adobe-ims': {
            type: 'ims',
            environment: 'production',
            baseUrl: sim.url,
            clientId: IMS_CLIENT_ID,
            clientSecret: order.map((name) => ({ file: file(name) })),
            scopes: ['openid'],
          },
        },
        clients: { ops: { key: { file: file('ops-key') }, credentials: ['*'] } },
      }),
    )
  const start = async () => {
    app = await buildBroker({
      simUrl: sim.url,
      document: {},
      env: { BROKER_CONFIG: file('broker.config.json'), LOG_LEVEL: 'trace' },
      logLines,
    })
  }
  const readySecret = async () =>
    (await app.inject({ url: '/readyz' })).json().credentials['adobe-ims'].secret
  /** A refresh naming the current token as rejected: always a mint (no debounce). */
  const refresh = async () => {
    const current = app.tokens.peek('adobe-ims', 0)?.accessToken ?? 'none'
    return app.inject({
      method: 'POST',
      url: '/v1/tokens/adobe-ims/refresh',
      headers: { ...auth(KEY), 'content-type': 'application/json' },
      payload: { rejected_token: current },
    })
  }
  const metric = async () =>
    /token_broker_credential_secret_index\{credential="adobe-ims"\} (\d+)/.exec(
      (await app.inject({ url: '/metrics' })).body,
    )?.[1]
  const warnings = () => logLines.filter((l) => l.includes(WARNING)).length
  const outcomes = () => sim.requests.map((r) => r.ok)

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'token-broker-secrets-'))
    // Adobe holds both secrets, as during a rotation in the Developer Console.
    sim = createSimulator({ secrets: { [IMS_CLIENT_ID]: [FIRST, SECOND] } })
    await sim.listen()
    await writeFile(file('first'), `${FIRST}\n`)
    await writeFile(file('second'), `${SECOND}\n`)
    await writeFile(file('ops-key'), `${KEY}\n`)
    await writeDocument(['first', 'second'])
    logLines = []
  })

  afterEach(async () => {
    await app?.close()
    await sim.close()
    await rm(dir, { recursive: true, force: true })
    // Never a secret in a log line, whatever happened.
    for (const secret of [FIRST, SECOND, KEY]) expect(logLines.join('')).not.toContain(secret)
  })

  it('takes the second secret when the first is refused: one refused call, one good one, secret 1, one warning', async () => {
    sim.behave(IMS_CLIENT_ID, { refuse: [FIRST] })
    await start()
    const res = await app.inject({ url: '/v1/tokens/adobe-ims', headers: auth(KEY) })
    expect(res.statusCode).toBe(200)
    expect(outcomes()).toEqual([false, true])
    expect(await readySecret()).toBe(1)
    expect(await metric()).toBe('1')
    expect(warnings()).toBe(1)

    // Kept: the next mint goes straight to the second secret, and says nothing more.
    expect((await refresh()).statusCode).toBe(200)
    expect(outcomes()).toEqual([false, true, true])
    expect(warnings()).toBe(1)
  })

  it('all refused: 502 UPSTREAM_REJECTED, one call per secret, then the brake holds (no hot loop)', async () => {
    sim.behave(IMS_CLIENT_ID, { refuse: [FIRST, SECOND] })
    await start()
    const answers = []
    for (let i = 0; i < 10; i++) answers.push(await refresh())
    expect(answers.map((r) => r.statusCode)).toEqual(Array(10).fill(502))
    expect(answers.every((r) => r.json().code === 'UPSTREAM_REJECTED')).toBe(true)
    expect(outcomes()).toEqual([false, false])
    expect(await readySecret()).toBe(0)
  })

  it('a 503 from upstream never moves to the next secret', async () => {
    await start()
    expect(outcomes()).toEqual([true])
    sim.behave(IMS_CLIENT_ID, { mode: 'error5xx', status: 503 })
    expect((await refresh()).statusCode).toBe(503)
    expect(sim.requests).toHaveLength(4) // the warm-up, then three attempts
    // Had the 503s moved it to the second secret, refusing that one would show as a refused call.
    sim.behave(IMS_CLIENT_ID, { mode: 'ok', refuse: [SECOND] })
    // Past the short brake a transient failure leaves.
    await new Promise((resolve) => setTimeout(resolve, 2_100))
    await refresh()
    expect(outcomes().slice(4).at(-1)).toBe(true)
    expect(outcomes().slice(4).includes(false)).toBe(false)
    expect(await readySecret()).toBe(0)
  })

  it('a reload with the order swapped moves to the new first secret at once', async () => {
    sim.behave(IMS_CLIENT_ID, { refuse: [FIRST] })
    await start()
    expect(await readySecret()).toBe(1)
    await writeDocument(['second', 'first'])
    expect(await app.reloadConfig('SIGHUP')).toBe(true)
    // The reload minted at once, with the new first secret: one good call, nothing refused.
    expect(outcomes()).toEqual([false, true, true])
    expect(await readySecret()).toBe(0)
    expect(await metric()).toBe('0')
  })
})
