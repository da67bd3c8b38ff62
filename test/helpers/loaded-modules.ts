import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect, onTestFinished } from 'vitest'
import { freePort, ROOT, startNode, TSX, waitForStatus } from '../../tools/process.js'
import { auth, baseEnv, SECRETS } from './broker.js'

const RECORD_LOADS = fileURLToPath(new URL('./record-loads.mjs', import.meta.url))

/**
 * Runs the broker as a real process (src/server.ts) with `configPath` and `env`, under module hooks
 * that record every module it loads (record-loads.mjs); waits until it is ready, gets a token for
 * `credential`, stops it with SIGTERM, and returns the URLs of the modules it loaded, ES and
 * CommonJS alike. Call it inside a test: its files and process go when the test ends.
 */
export async function modulesLoaded(
  configPath: string,
  env: Record<string, string> = {},
  credential = 'adobe-ims',
): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'token-broker-loads-'))
  onTestFinished(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'loaded.txt')
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const server = startNode(
    'broker',
    ['--import', TSX, '--import', RECORD_LOADS, join(ROOT, 'src', 'server.ts')],
    {
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        ...baseEnv(configPath),
        PORT: String(port),
        LOG_LEVEL: 'info',
        LOADED_MODULES_FILE: file,
        ...env,
      },
    },
  )
  onTestFinished(async () => {
    await server.stop(1000)
  })
  await waitForStatus(`${base}/readyz`, { child: server, timeoutMs: 20_000 })
  const res = await fetch(`${base}/v1/tokens/${credential}`, { headers: auth(SECRETS.keyAll) })
  expect(res.status).toBe(200)
  await res.arrayBuffer()
  const exit = await server.stop(5000)
  expect(exit.code, server.output()).toBe(0)
  return [...new Set((await readFile(file, 'utf8')).split('\n').filter(Boolean))]
}
