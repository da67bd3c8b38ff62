import { readFileSync } from 'node:fs'

/**
 * CPU used by processes other than the bench and the server under test, while a measurement runs.
 * On a 2-core machine anything else running (a test suite, a build) skews req/s badly, so every
 * load run reports it and the summary flags runs where it was noticeable. Linux only (/proc).
 */
const TICK_S = 0.01 // USER_HZ is 100 on Linux

interface Sample {
  at: number
  /** user + nice + system + steal over all CPUs (irq/softirq left out: loopback traffic lands there). */
  busy: number
  loader: number
  server: number
}

function systemBusy(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!
  const f = line.trim().split(/\s+/).slice(1).map(Number)
  return (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[7] ?? 0)
}

function processTicks(pid: number | undefined): number {
  if (pid === undefined) return 0
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ')
    return Number(f[11]) + Number(f[12]) // utime, stime (all threads)
  } catch {
    return 0
  }
}

function sample(serverPid: number | undefined): Sample | undefined {
  try {
    return {
      at: performance.now(),
      busy: systemBusy(),
      loader: processTicks(process.pid),
      server: processTicks(serverPid),
    }
  } catch {
    return undefined // not Linux
  }
}

export interface CpuUse {
  /** Average cores used by the bench process (autocannon), the server, and everything else. */
  loader: number
  server: number
  foreign: number
}

/** Starts watching; `stop()` returns the average CPU use in cores over the interval, if known. */
export function watchCpu(serverPid?: number): { stop(): CpuUse | undefined } {
  const start = sample(serverPid)
  return {
    stop() {
      const end = sample(serverPid)
      if (!start || !end) return undefined
      const seconds = (end.at - start.at) / 1000
      if (seconds <= 0) return undefined
      const cores = (ticks: number) => Math.max(0, (ticks * TICK_S) / seconds)
      const loader = end.loader - start.loader
      const server = end.server - start.server
      return {
        loader: cores(loader),
        server: cores(server),
        foreign: cores(end.busy - start.busy - loader - server),
      }
    },
  }
}

/** Above this many cores used by others during a run, its numbers are flagged as contended. */
export const CONTENDED_CORES = 0.15

/**
 * Waits (at most `maxS` seconds, in 1 s probes) until other processes use less than
 * CONTENDED_CORES; returns what the last probe saw. maxS = 0 returns at once.
 */
export async function waitForQuiet(maxS: number, serverPid?: number): Promise<number | undefined> {
  const deadline = performance.now() + maxS * 1000
  let seen: number | undefined
  while (performance.now() < deadline) {
    const w = watchCpu(serverPid)
    await new Promise((resolve) => setTimeout(resolve, 1000))
    seen = w.stop()?.foreign
    if (seen === undefined || seen < CONTENDED_CORES) return seen
  }
  return seen
}
