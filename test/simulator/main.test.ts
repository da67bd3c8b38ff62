import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../..', import.meta.url))
const children: ChildProcess[] = []
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL')
})

function start(env: Record<string, string>): {
  child: ChildProcess
  output: () => string
  exited: Promise<number | null>
} {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/simulator/main.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  children.push(child)
  let out = ''
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString()
  })
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString()
  })
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
  return { child, output: () => out, exited }
}

async function listening(output: () => string, exited: Promise<unknown>): Promise<string> {
  let done = false
  void exited.then(() => {
    done = true
  })
  for (;;) {
    const m = /listening on (http:\/\/\S+)/.exec(output())
    if (m) return m[1]!
    if (done) throw new Error(`simulator exited: ${output()}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

describe('simulator process', () => {
  it('checks secrets from SIMULATOR_SECRETS_DIR and exits 0 on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sim-secrets-'))
    writeFileSync(join(dir, 'app-1'), 'from-file\n')
    try {
      const { child, output, exited } = start({ SIMULATOR_PORT: '0', SIMULATOR_SECRETS_DIR: dir })
      const url = await listening(output, exited)
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

      child.kill('SIGTERM')
      expect(await exited).toBe(0)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('refuses a bad SIMULATOR_PORT with one clear line and a non-zero exit', async () => {
    const { output, exited } = start({ SIMULATOR_PORT: 'eighty' })
    expect(await exited).toBe(1)
    expect(output()).toContain('SIMULATOR_PORT must be an integer')
  })
})
