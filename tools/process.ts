import { type ChildProcess, spawn } from 'node:child_process'
import net from 'node:net'
import { fileURLToPath, pathToFileURL } from 'node:url'

/**
 * Child processes for the tests and the bench: start one, wait for a line or an HTTP answer, stop it,
 * read what it wrote. Nothing here registers global cleanup: tests stop their children from vitest
 * hooks, the bench from its exit handlers (bench/cleanup.ts). Nothing is ever killed by name.
 */

/** The repository root, so children can run from any working directory. */
export const ROOT = fileURLToPath(new URL('..', import.meta.url))
/** tsx's loader by absolute URL: `node --import <TSX> file.ts` works whatever the cwd. */
export const TSX = pathToFileURL(`${ROOT}node_modules/tsx/dist/loader.mjs`).href

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
  /** Date.now() when the process ended. */
  at: number
}

export interface Child {
  readonly name: string
  readonly pid: number
  readonly proc: ChildProcess
  /** What the child wrote, each stream bounded to its last `keepBytes`. */
  stdout(): string
  stderr(): string
  /** Both streams interleaved, for error messages. */
  output(): string
  readonly exited: Promise<Exit>
  isRunning(): boolean
  /** Sends `signal` to the child (to its whole group when started with `group`). */
  signal(signal: NodeJS.Signals): void
  /** SIGTERM, SIGKILL after `graceMs`; resolves once the process has ended. */
  stop(graceMs?: number): Promise<Exit>
}

export interface StartOptions {
  /** The child's whole environment; default: this process's. */
  env?: NodeJS.ProcessEnv
  cwd?: string
  /** Run in its own process group, so stopping it also stops whatever it started. */
  group?: boolean
  keepBytes?: number
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export function startChild(name: string, command: string, args: string[], opts: StartOptions = {}): Child {
  const proc = spawn(command, args, {
    detached: opts.group === true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: opts.env ?? process.env,
    cwd: opts.cwd,
  })
  if (proc.pid === undefined) throw new Error(`${name}: could not start ${command}`)
  const pid = proc.pid
  const keep = opts.keepBytes ?? 1 << 20
  const text = { out: '', err: '', both: '' }
  const append = (stream: 'out' | 'err') => (data: Buffer | string) => {
    const s = data.toString()
    text[stream] = (text[stream] + s).slice(-keep)
    text.both = (text.both + s).slice(-keep)
  }
  proc.stdout?.on('data', append('out'))
  proc.stderr?.on('data', append('err'))
  proc.on('error', (err) => append('err')(`\n[spawn error] ${err.message}\n`))
  let running = true
  const exited = new Promise<Exit>((resolve) => {
    proc.once('exit', (code, signal) => {
      running = false
      resolve({ code, signal, at: Date.now() })
    })
  })
  const send = (signal: NodeJS.Signals) => {
    try {
      if (opts.group) process.kill(-pid, signal)
      else proc.kill(signal)
    } catch {
      // already gone
    }
  }
  return {
    name,
    pid,
    proc,
    stdout: () => text.out,
    stderr: () => text.err,
    output: () => text.both,
    exited,
    isRunning: () => running,
    signal: send,
    async stop(graceMs = 5000) {
      if (running) {
        send('SIGTERM')
        const timer = setTimeout(() => send('SIGKILL'), graceMs)
        await exited
        clearTimeout(timer)
      }
      // Anything the child itself started goes with its group.
      if (opts.group) send('SIGKILL')
      return exited
    },
  }
}

/** `node <args>` with this process's node binary. */
export const startNode = (name: string, args: string[], opts?: StartOptions): Child =>
  startChild(name, process.execPath, args, opts)

/** Waits until the child's output matches `pattern`; fails when it exits first or after `timeoutMs`. */
export async function waitForLine(
  child: Child,
  pattern: RegExp,
  timeoutMs = 15_000,
): Promise<RegExpExecArray> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const m = pattern.exec(child.output())
    if (m) return m
    if (!child.isRunning())
      throw new Error(`${child.name} exited before printing ${pattern}:\n${child.output()}`)
    if (Date.now() > deadline)
      throw new Error(`${child.name} did not print ${pattern} in time:\n${child.output()}`)
    await sleep(20)
  }
}

/** Polls `url` until it answers `status`; fails after `timeoutMs`, or early when `child` exits. */
export async function waitForStatus(
  url: string,
  opts: {
    status?: number
    timeoutMs?: number
    child?: Child
    headers?: Record<string, string>
    /** Between polls (default 100 ms); shorter where the moment it answers is measured. */
    intervalMs?: number
  } = {},
): Promise<void> {
  const want = opts.status ?? 200
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000)
  let last = 'no answer'
  while (Date.now() < deadline) {
    if (opts.child && !opts.child.isRunning()) {
      throw new Error(`${opts.child.name} exited before ${url} answered ${want}:\n${opts.child.output()}`)
    }
    try {
      const res = await fetch(url, { headers: opts.headers, signal: AbortSignal.timeout(2000) })
      await res.arrayBuffer()
      if (res.status === want) return
      last = `status ${res.status}`
    } catch (err) {
      last = (err as Error).message
    }
    await sleep(opts.intervalMs ?? 100)
  }
  throw new Error(
    `${url} did not answer ${want} in time (last: ${last})${opts.child ? `:\n${opts.child.output()}` : ''}`,
  )
}

/** A port free on 127.0.0.1 at the time of asking. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo
      srv.close(() => resolve(port))
    })
  })
}
