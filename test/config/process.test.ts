import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { freePort, waitForStatus } from '../../tools/process.js'
import { auth, baseEnv, brokerDocument, SECRETS, startSimulator } from '../helpers/broker.js'
import { startServer } from '../helpers/server-process.js'

/** Never contacted: every case fails before the server listens. */
const SIM_URL = 'http://127.0.0.1:9'
const KEY_CANARY = Buffer.from('key-CANARY-too-short-aa90').toString('base64')
const FILE_CANARY = 'file-CANARY-literal-6c2d'
const CANARIES = [...Object.values(SECRETS), KEY_CANARY, FILE_CANARY]

let dir: string
let goodConfig: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'token-broker-process-'))
  goodConfig = join(dir, 'good.json')
  await writeFile(goodConfig, JSON.stringify(brokerDocument(SIM_URL)))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** Runs the real server with `env` (and no other variables) and returns how it ended. */
async function run(env: Record<string, string>, cwd?: string) {
  const s = startServer(env, cwd)
  const timer = setTimeout(() => s.signal('SIGKILL'), 15_000)
  try {
    const { code, signal } = await s.exited
    return { code, signal, stderr: s.stderr(), stdout: s.stdout() }
  } finally {
    clearTimeout(timer)
  }
}

/** Exit 1, and stderr is exactly one line naming `name`: no stack trace, no secret, anywhere. */
function expectOneLine(r: Awaited<ReturnType<typeof run>>, name: string): string {
  expect(r.signal).toBeNull()
  expect(r.code).toBe(1)
  const lines = r.stderr.split('\n').filter((l) => l !== '')
  expect(lines, r.stderr).toHaveLength(1)
  const line = lines[0]!
  expect(line).toMatch(/^token-broker: invalid configuration: /)
  expect(line).toContain(name)
  expect(r.stderr).not.toMatch(/\n\s+at |Error:|node:internal/)
  for (const canary of CANARIES) {
    expect(r.stderr).not.toContain(canary)
    expect(r.stdout).not.toContain(canary)
  }
  return line
}

describe('the process refuses a bad start with one line on stderr and exit 1', () => {
  it('no config file at all (as `npm start` in an empty directory): names BROKER_CONFIG', async () => {
    const empty = await mkdtemp(join(dir, 'empty-'))
    const line = expectOneLine(await run({}, empty), 'BROKER_CONFIG')
    expect(line).toContain('broker.config.json')
    expect(line).toContain('does not exist')
  })

  it('PORT=abc', async () => {
    expectOneLine(await run({ ...baseEnv(goodConfig), PORT: 'abc' }), 'PORT')
  })

  it('LOG_LEVEL=loud (the logger itself falls back, the schema refuses)', async () => {
    expectOneLine(await run({ ...baseEnv(goodConfig), LOG_LEVEL: 'loud' }), 'LOG_LEVEL')
  })

  it('TRUST_PROXY=bogus', async () => {
    expectOneLine(await run({ ...baseEnv(goodConfig), TRUST_PROXY: 'bogus' }), 'TRUST_PROXY')
  })

  it('a TOKEN_ENCRYPTION_KEY that is not 32 bytes: named, its value never shown', async () => {
    expectOneLine(
      await run({ ...baseEnv(goodConfig), TOKEN_ENCRYPTION_KEY: KEY_CANARY }),
      'TOKEN_ENCRYPTION_KEY',
    )
  })

  it('a literal secret in the config file: names the field, never the value', async () => {
    const path = join(dir, 'literal.json')
    const doc = brokerDocument(SIM_URL)
    ;(doc.credentials['adobe-ims'] as Record<string, unknown>).clientSecret = FILE_CANARY
    await writeFile(path, JSON.stringify(doc))
    expectOneLine(await run({ ...baseEnv(path), LOG_LEVEL: 'trace' }), 'credentials.adobe-ims.clientSecret')
  })

  it('a config file that is not JSON, around a secret: never quotes it', async () => {
    const path = join(dir, 'broken.json')
    await writeFile(path, `{"credentials": {"x": {"clientSecret": "${FILE_CANARY}"`)
    expectOneLine(await run({ ...baseEnv(path), LOG_LEVEL: 'trace' }), 'BROKER_CONFIG')
  })

  it('an unset secret variable: names the field and the variable', async () => {
    const env: Record<string, string> = { ...baseEnv(goodConfig) }
    delete env.TEST_EQP_SECRET
    const line = expectOneLine(await run(env), 'credentials.marketplace.appSecret')
    expect(line).toContain('TEST_EQP_SECRET')
  })
})

describe('empty variables count as unset in the real process', () => {
  it('REDIS_URL= (and LOG_LEVEL=, TRUST_PROXY=, TOKEN_ENCRYPTION_KEY=): starts on the in-memory store with its warning', async () => {
    const sim = await startSimulator()
    onTestFinished(() => sim.close())
    const path = join(dir, 'empty-vars.json')
    await writeFile(path, JSON.stringify(brokerDocument(sim.url)))
    const port = await freePort()
    const s = startServer({
      ...baseEnv(path),
      PORT: String(port),
      REDIS_URL: '',
      LOG_LEVEL: '',
      TRUST_PROXY: '',
      TOKEN_ENCRYPTION_KEY: '',
      REFRESH_MARGIN: '',
    })
    onTestFinished(async () => {
      await s.stop(1000)
    })
    const base = `http://127.0.0.1:${port}`
    await waitForStatus(`${base}/readyz`, { child: s, timeoutMs: 15_000 })
    const res = await fetch(`${base}/v1/tokens/marketplace`, { headers: auth(SECRETS.keyAll) })
    expect(res.status).toBe(200)
    await res.body?.cancel()
    // LOG_LEVEL= is info (baseEnv's "silent" would hide it): the in-memory warning is logged.
    expect(s.stdout()).toContain('REDIS_URL is not set: in-memory token store')
    expect(s.stderr()).toBe('')
  })
})
