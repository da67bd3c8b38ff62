import { type Child, type StartOptions, sleep, startChild } from '../tools/process.js'

/**
 * Every process and temporary thing the bench starts goes when the bench ends, for any reason:
 * normally, on an error, or on Ctrl-C. Each child runs in its own process group, so stopping one
 * stops everything it started.
 */
const live = new Set<Child>()
const cleanups = new Set<() => Promise<void>>()

/** Starts a child of the bench (tools/process.ts) in its own group, stopped by cleanupAll(). */
export function startBenchChild(
  name: string,
  command: string,
  args: string[],
  opts: Omit<StartOptions, 'group'> = {},
): Child {
  const child = startChild(name, command, args, { ...opts, group: true, keepBytes: 8000 })
  live.add(child)
  void child.exited.then(() => live.delete(child))
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
    for (const c of live) c.signal('SIGKILL')
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
