import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Simulator } from '../../src/simulator/server.js'
import { brokerDocument, SECRETS, startSimulator } from '../helpers/broker.js'
import { eventually } from '../store/contract.js'

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** The real process: `kill -HUP` applies a changed config file without a restart. */
describe('SIGHUP on the server process', () => {
  let sim: Simulator
  let dir: string
  let child: ChildProcess
  let base: string
  let output = ''

  beforeAll(async () => {
    sim = await startSimulator()
    dir = await mkdtemp(join(tmpdir(), 'token-broker-hup-'))
    await writeFile(join(dir, 'broker.config.json'), JSON.stringify(brokerDocument(sim.url)))
    const port = await freePort()
    base = `http://127.0.0.1:${port}`
    child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
      env: {
        PATH: process.env.PATH,
        PORT: String(port),
        BROKER_CONFIG: join(dir, 'broker.config.json'),
        TEST_IMS_SECRET: SECRETS.ims,
        TEST_EQP_SECRET: SECRETS.eqp,
        TEST_KEY_ALL: SECRETS.keyAll,
        TEST_KEY_IMS: SECRETS.keyIms,
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    child.stdout?.on('data', (d) => {
      output += d
    })
    child.stderr?.on('data', (d) => {
      output += d
    })
    await eventually(async () => expect((await fetch(`${base}/readyz`)).status).toBe(200), 15_000)
  })

  afterAll(async () => {
    child.kill('SIGTERM')
    await new Promise((resolve) => child.once('exit', resolve))
    await sim.close()
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
    child.kill('SIGHUP')

    await eventually(async () => expect((await get(newKey)).status).toBe(200), 5_000)
    expect(child.exitCode).toBeNull()
    expect(output).toContain('configuration reloaded')
    expect(output).not.toMatch(/CANARY/)
  })
})
