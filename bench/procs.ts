import { type ChildProcess, spawn } from 'node:child_process'
import net from 'node:net'

/**
 * Child processes of the bench. Each runs in its own process group (detached), so stopping one
 * stops everything it started, and every group is killed when the bench exits for any reason:
 * normally, on an error, or on Ctrl-C. Nothing is ever killed by name.
 */
export interface Child {
  readonly name: string
  readonly pid: number
  readonly proc: ChildProcess
  /** The last few KB of the child's stdout and stderr, for error messages. */
  output(): string
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  isRunning(): boolean
  /** SIGTERM to the group, SIGKILL after `graceMs`; resolves once the process has exited. */
  stop(graceMs?: number): Promise<void>
}

const live = new Set<Child>()
const cleanups = new Set<() => Promise<void>>()

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal)
  } catch {
    // already gone
  }
}

export interface StartOptions {
  env?: NodeJS.ProcessEnv
  cwd?: string
}

export function startChild(name: string, command: string, args: string[], opts: StartOptions = {}): Child {
  const proc = spawn(command, args, {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: opts.env ?? process.env,
    cwd: opts.cwd,
  })
  if (proc.pid === undefined) throw new Error(`${name}: could not start ${command}`)
  const pid = proc.pid
  let tail = ''
  const keep = (data: Buffer | string) => {
    tail = (tail + data.toString()).slice(-8000)
  }
  proc.stdout?.on('data', keep)
  proc.stderr?.on('data', keep)
  proc.on('error', (err) => keep(`\n[spawn error] ${err.message}\n`))
  let running = true
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.once('exit', (code, signal) => {
      running = false
      live.delete(child)
      resolve({ code, signal })
    })
  })
  const child: Child = {
    name,
    pid,
    proc,
    output: () => tail,
    exited,
    isRunning: () => running,
    async stop(graceMs = 5000) {
      if (!running) return
      signalGroup(pid, 'SIGTERM')
      const timer = setTimeout(() => signalGroup(pid, 'SIGKILL'), graceMs)
      await exited
      clearTimeout(timer)
      // Anything the child itself started goes with its group.
      signalGroup(pid, 'SIGKILL')
    },
  }
  live.add(child)
  return child
}

/** Registers async cleanup work (a container to stop, a temp dir to remove) for every way out. */
export function onCleanup(fn: () => Promise<void>): () => void {
  cleanups.add(fn)
  return () => cleanups.delete(fn)
}

let cleaning: Promise<void> | undefined

/** Stops every live child and runs every cleanup; bounded, runs once. */
export function cleanupAll(): Promise<void> {
  cleaning ??= (async () => {
    await Promise.allSettled([...live].map((c) => c.stop(3000)))
    const fns = [...cleanups]
    cleanups.clear()
    await Promise.race([Promise.allSettled(fns.map((fn) => fn())), sleep(15_000)])
  })()
  return cleaning
}

/** Installs the handlers that make sure no child outlives the bench. */
export function installExitHandlers(): void {
  // Last resort, synchronous: whatever is still alive when the process exits gets SIGKILL.
  process.on('exit', () => {
    for (const c of live) signalGroup(c.pid, 'SIGKILL')
  })
  let bailing = false
  const bail = (why: string, code: number) => {
    // Handlers stay installed: a second Ctrl-C (or a signal re-raised by a loader such as tsx once
    // no listener is left) must not kill the bench before its children and temp files are gone.
    if (bailing) return
    bailing = true
    process.stderr.write(`\nbench: ${why}; stopping child processes\n`)
    void cleanupAll().finally(() => process.exit(code))
  }
  process.on('SIGINT', () => bail('interrupted (SIGINT)', 130))
  process.on('SIGTERM', () => bail('terminated (SIGTERM)', 143))
  process.on('SIGHUP', () => bail('hang-up (SIGHUP)', 129))
  process.on('uncaughtException', (err) => bail(`uncaught error: ${err.stack ?? err.message}`, 1))
  process.on('unhandledRejection', (err) => bail(`unhandled rejection: ${String(err)}`, 1))
}

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

/**
 * Polls `url` until it answers `status` (bounded by `timeoutMs`), failing early when `child` exits.
 */
export async function waitForStatus(
  url: string,
  opts: { status?: number; timeoutMs?: number; child?: Child; headers?: Record<string, string> } = {},
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
    await sleep(100)
  }
  throw new Error(
    `${url} did not answer ${want} in time (last: ${last})${opts.child ? `:\n${opts.child.output()}` : ''}`,
  )
}
