import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Simulator } from '../../src/simulator/server.js'
import { type Child, freePort, waitForStatus } from '../../tools/process.js'
import { brokerDocument, SECRETS, startSimulator } from '../helpers/broker.js'
import { startServer } from '../helpers/server-process.js'
import { eventually } from '../store/contract.js'

/** The real process: `kill -HUP` applies a changed config file without a restart. */
describe('SIGHUP on the server process', () => {
  let sim: Simulator
  let dir: string
  let child: Child
  let base: string

  beforeAll(async () => {
    sim = await startSimulator()
    dir = await mkdtemp(join(tmpdir(), 'token-broker-hup-'))
    await writeFile(join(dir, 'broker.config.json'), JSON.stringify(brokerDocument(sim.url)))
    const port = await freePort()
    base = `http://127.0.0.1:${port}`
    child = startServer({
      PORT: String(port),
      BROKER_CONFIG: join(dir, 'broker.config.json'),
      TEST_IMS_SECRET: SECRETS.ims,
      TEST_EQP_SECRET: SECRETS.eqp,
      TEST_KEY_ALL: SECRETS.keyAll,
      TEST_KEY_IMS: SECRETS.keyIms,
      LOG_LEVEL: 'info',
    })
    await waitForStatus(`${base}/readyz`, { child, timeoutMs: 15_000 })
  })

  afterAll(async () => {
    await child?.stop()
    await sim?.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('reloads the file on SIGHUP: a new client key works, and nothing secret is logged', async () => {
    const newKey = 'new-client-key-CANARY-9d1f'
    const get = (key: string) =>
      fetch(`${base}/v1/tokens/marketplace`, { headers: { authorization: `Bearer ${key}` } })
    expect((await get(newKey)).status).toBe(401)

    const doc = brokerDocument(sim.url)
    ;(doc.clients as Record<string, unknown>).newcomer = {
      key: { file: join(dir, 'newcomer') },
      credentials: ['marketplace'],
    }
    await writeFile(join(dir, 'newcomer'), `${newKey}\n`)
    await writeFile(join(dir, 'broker.config.json'), JSON.stringify(doc))
    child.signal('SIGHUP')

    await eventually(async () => expect((await get(newKey)).status).toBe(200), 5_000)
    expect(child.isRunning()).toBe(true)
    expect(child.output()).toContain('configuration reloaded')
    expect(child.output()).not.toMatch(/CANARY/)
  })
})
