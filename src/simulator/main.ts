import { readFileSync, realpathSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { createSimulator } from './server.js'

/** Ids become file names: refuse anything that could step out of the secrets directory. */
const SAFE_ID = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/

function secretsFromDir(dir: string): (id: string) => string | undefined {
  return (id) => {
    if (!SAFE_ID.test(id)) return undefined
    try {
      return readFileSync(join(dir, id), 'utf8').replace(/\r?\n$/, '')
    } catch {
      return undefined // no such id: the request is rejected, as upstream would
    }
  }
}

function parsePort(raw: string | undefined): number {
  if (raw === undefined || raw === '') return 8081
  const port = Number(raw)
  if (!/^\d+$/.test(raw) || port > 65535) throw new Error('SIMULATOR_PORT must be an integer in [0, 65535]')
  return port
}

/** The simulator as its own process (docker compose). Only this function reads the environment. */
export async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  let port: number
  try {
    port = parsePort(env.SIMULATOR_PORT)
  } catch (err) {
    console.error((err as Error).message)
    process.exit(1)
  }
  const host = env.SIMULATOR_HOST || '127.0.0.1'
  const dir = env.SIMULATOR_SECRETS_DIR
  const sim = createSimulator(dir ? { secrets: secretsFromDir(dir) } : {})
  const url = await sim.listen(port, host)
  console.log(`adobe simulator listening on ${url} (secrets: ${dir ? 'checked' : 'any non-empty'})`)

  const stop = (): void => {
    sim.close().then(
      () => process.exit(0),
      () => process.exit(1),
    )
  }
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
}

/** True when this file was started directly (node/tsx main.ts), false when imported (tests). */
function isEntryPoint(): boolean {
  const entry = process.argv[1]
  if (entry === undefined) return false
  try {
    return import.meta.url === pathToFileURL(realpathSync(entry)).href
  } catch {
    return false
  }
}

if (isEntryPoint()) {
  main().catch((err: unknown) => {
    console.error(`simulator failed to start: ${(err as Error).message}`)
    process.exit(1)
  })
}
