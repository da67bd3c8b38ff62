import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { waitForLine } from '../../tools/process.js'
import { startSource } from '../helpers/server-process.js'

/** The simulator's own process, stopped when the test ends whatever happened. */
function start(env: Record<string, string>) {
  const child = startSource('simulator/main.ts', env)
  onTestFinished(async () => {
    await child.stop(1000)
  })
  return child
}

describe('simulator process', () => {
  it('checks secrets from SIMULATOR_SECRETS_DIR and exits 0 on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sim-secrets-'))
    writeFileSync(join(dir, 'app-1'), 'from-file\n')
    try {
      const child = start({ SIMULATOR_PORT: '0', SIMULATOR_SECRETS_DIR: dir })
      const url = (await waitForLine(child, /listening on (http:\/\/\S+)/))[1]!
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
      const token = (secret: string, id = 'app-1') =>
        fetch(`${url}/ims/token/v3`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({
            client_id: id,
            client_secret: secret,
            grant_type: 'client_credentials',
          }),
        }).then((r) => r.status)
      expect(await token('from-file')).toBe(200)
      expect(await token('from-file\n')).toBe(400)
      expect(await token('from-file', '..')).toBe(400)
      expect(await token('from-file', 'unknown')).toBe(400)

      child.signal('SIGTERM')
      expect((await child.exited).code).toBe(0)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('refuses a bad SIMULATOR_PORT with one clear line and a non-zero exit', async () => {
    const child = start({ SIMULATOR_PORT: 'eighty' })
    expect((await child.exited).code).toBe(1)
    expect(child.output()).toContain('SIMULATOR_PORT must be an integer')
  })
})
