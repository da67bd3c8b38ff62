import { type ChildProcess, spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const SERVER = join(ROOT, 'src', 'server.ts')
/** tsx by absolute URL, so the server can run from any working directory. */
export const TSX = pathToFileURL(join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href

export interface Spawned {
  child: ChildProcess
  stdout: () => string
  stderr: () => string
  /** Resolves with the exit code (or the signal name) once the process has ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>
}

/**
 * Starts `node --import tsx src/server.ts` with exactly `env` (plus PATH and HOME): nothing leaks in
 * from the test runner's environment, REDIS_URL included.
 */
export function startServer(env: Record<string, string>, cwd = ROOT): Spawned {
  const child = spawn(process.execPath, ['--import', TSX, SERVER], {
    cwd,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString()
  })
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString()
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>(
    (resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() }))
    },
  )
  return { child, stdout: () => out, stderr: () => err, exited }
}

/** Kills a process still running at the end of a test, so no test leaves one behind. */
export function reap(s: Spawned | undefined): void {
  if (s && s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL')
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address()
      const port = typeof address === 'object' && address ? address.port : 0
      srv.close(() => resolve(port))
    })
  })
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Polls `url` until it answers `status`, or fails after `timeoutMs` (or when the process exits). */
export async function waitForStatus(
  url: string,
  status: number,
  s: Spawned,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last = 'no answer'
  while (Date.now() < deadline) {
    if (s.child.exitCode !== null) throw new Error(`server exited early (${s.child.exitCode}): ${s.stderr()}`)
    try {
      const res = await fetch(url)
      last = String(res.status)
      await res.body?.cancel()
      if (res.status === status) return
    } catch (err) {
      last = (err as Error).message
    }
    await sleep(100)
  }
  throw new Error(
    `${url} did not answer ${status} within ${timeoutMs} ms (last: ${last}); stderr: ${s.stderr()}`,
  )
}
