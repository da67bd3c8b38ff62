import { readFileSync } from 'node:fs'
import {
  AUTH,
  type BenchCredential,
  type BrokerOptions,
  credentials,
  newEncryptionKey,
  newKeyPrefix,
  spawnBroker,
  waitReady,
  writeConfig,
} from './broker.js'
import { waitForQuiet } from './cpu.js'
import { type Ctx, contention, median } from './hot-path.js'
import { hasErrors, type LoadResult, runLoad } from './load.js'

export interface GrowthPoint {
  credentials: number
  /** Requests rotate over this many ids (autocannon `requests` array, in order, per connection). */
  rotatedOver: number
  /** Cold start to /readyz 200 (every token minted), first round. */
  readyMs: number
  notOk: number
  /** One load run per round, each on a freshly started broker; rounds alternate the order. */
  runs: LoadResult[]
  rps: number
  p50: number
  p99: number
  usPerReq: number
  /** req/s over the 1-credential broker's in the same round, median over rounds. */
  relative: number
  /** The same for server CPU per request. */
  relativeCpu: number
}

export interface GrowthResult {
  rounds: number
  points: GrowthPoint[]
  maxDeviation: number
  errors: boolean
}

interface ReadyBody {
  credentials: Record<string, { state: string }>
}

interface Spec {
  name: string
  creds: BenchCredential[]
  opts: BrokerOptions
  configPath: string
}

function spec(ctx: Ctx, name: string, count: number): Spec {
  const creds = credentials(name, count)
  return {
    name,
    creds,
    configPath: writeConfig(ctx.simUrl, creds),
    opts: {
      name: `broker-${name}`,
      simUrl: ctx.simUrl,
      creds,
      redisUrl: ctx.redisUrl,
      keyPrefix: newKeyPrefix(name),
      encryptionKey: newEncryptionKey(),
    },
  }
}

/** Starts the broker of `s` and waits for readiness; a restart takes its tokens from Redis. */
async function readyBroker(s: Spec) {
  const t0 = performance.now()
  const b = await spawnBroker(s.opts, s.configPath)
  try {
    await waitReady(b, 180_000)
  } catch (err) {
    await b.stop()
    throw err
  }
  const readyMs = performance.now() - t0
  const ready = (await (await fetch(`${b.url}/readyz`)).json()) as ReadyBody
  const notOk = Object.values(ready.credentials).filter((c) => c.state !== 'ok').length
  return { b, readyMs, notOk, paths: s.creds.map((c) => `/v1/tokens/${c.id}`) }
}

const COUNTS = [1, 100, 1000]

/**
 * Hot-path req/s with 1, 100 and 1000 credentials configured; requests rotate over all of them.
 * Each round starts the three brokers afresh, one at a time (the first start mints every token; the
 * restarts take them from Redis), in an order that alternates (1, 100, 1000 then 1000, 100, 1), and
 * compares each with the 1-credential broker of the same round: a process's luck (where the kernel
 * places it next to the load generator on 2 cores) and drift in the machine then average out.
 */
export async function growth(ctx: Ctx): Promise<GrowthResult> {
  const { cfg } = ctx
  const specs = COUNTS.map((count) => spec(ctx, `g${count}`, count))
  const runs: LoadResult[][] = COUNTS.map(() => [])
  const firstReady: number[] = []
  const notOk: number[] = COUNTS.map(() => 0)
  for (let round = 1; round <= cfg.growthRounds; round++) {
    const order = round % 2 ? [0, 1, 2] : [2, 1, 0]
    for (const i of order) {
      const x = await readyBroker(specs[i]!)
      try {
        if (round === 1) firstReady[i] = x.readyMs
        notOk[i] = Math.max(notOk[i]!, x.notOk)
        const load = {
          url: x.b.url,
          paths: x.paths,
          headers: AUTH,
          connections: cfg.connections,
          serverPid: x.b.pid,
        }
        await waitForQuiet(cfg.quietS, x.b.pid)
        // A fresh process: 1 s of load is plenty for the JIT (keeps the default run near 4 minutes).
        if (cfg.warmupS > 0) await runLoad({ ...load, durationS: Math.min(1, cfg.warmupS) })
        const r = await runLoad({ ...load, durationS: cfg.growthS })
        runs[i]!.push(r)
        ctx.log(
          `  round ${round} ${String(COUNTS[i]).padStart(4)} credentials: ${round === 1 ? 'cold start' : 'restart'} ready in ${(x.readyMs / 1000).toFixed(1)} s${x.notOk ? ` (${x.notOk} not ok)` : ''}, ${r.rps.toFixed(0)} req/s, p99 ${r.p99.toFixed(2)} ms${contention(r)}${hasErrors(r) ? ' ERRORS' : ''}`,
        )
      } finally {
        await x.b.stop()
      }
    }
  }
  const us = (r: LoadResult) => r.serverUsPerReq ?? Number.NaN
  const points: GrowthPoint[] = specs.map((sp, i) => {
    const mine = runs[i]!
    return {
      credentials: COUNTS[i]!,
      rotatedOver: sp.creds.length,
      readyMs: firstReady[i]!,
      notOk: notOk[i]!,
      runs: mine,
      rps: median(mine.map((r) => r.rps)),
      p50: median(mine.map((r) => r.p50)),
      p99: median(mine.map((r) => r.p99)),
      usPerReq: median(mine.map(us)),
      relative: median(mine.map((r, k) => r.rps / runs[0]![k]!.rps)),
      relativeCpu: median(mine.map((r, k) => us(r) / us(runs[0]![k]!))),
    }
  })
  return {
    rounds: cfg.growthRounds,
    points,
    maxDeviation: Math.max(...points.map((p) => Math.abs(p.relative - 1))),
    errors: points.some((p) => p.notOk > 0 || p.runs.some(hasErrors)),
  }
}

export interface MemoryResult {
  credentials: number
  loadSeconds: number
  load: LoadResult
  /** /proc/<pid>/status, in MB (MiB). */
  rssBeforeMb: number
  rssAfterMb: number
  hwmMb: number
  /** VmRSS every 10 s during the load. */
  trend: { s: number; rssMb: number }[]
  /** process_resident_memory_bytes from /metrics, MB (MiB), right after the /proc read. */
  metricsRssMb: number | undefined
  heapUsedMb: number | undefined
}

export const vmRssMb = (pid: number) => procStatusMb(pid, 'VmRSS')

/** A memory figure of /proc/<pid>/status (Linux), in MB (MiB). */
export function procStatusMb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1]
  if (kb === undefined) throw new Error(`no ${field} in /proc/${pid}/status`)
  return Number(kb) / 1024
}

const metric = (text: string, name: string): number | undefined => {
  const v = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)`, 'm').exec(text)?.[1]
  return v === undefined ? undefined : Number(v)
}

/** RSS of one broker with 100 credentials after BENCH_MEMORY_SECONDS of load over all of them. */
export async function memory(ctx: Ctx): Promise<MemoryResult> {
  const { cfg } = ctx
  const { b, paths } = await readyBroker(spec(ctx, 'mem', 100))
  try {
    const rssBeforeMb = procStatusMb(b.pid, 'VmRSS')
    // VmRSS every 10 s under load: a steady climb would be a leak, a plateau is the heap settling.
    const t0 = performance.now()
    const trend: { s: number; rssMb: number }[] = []
    const every = setInterval(() => {
      try {
        trend.push({ s: Math.round((performance.now() - t0) / 1000), rssMb: procStatusMb(b.pid, 'VmRSS') })
      } catch {
        // the broker is gone; the run reports it
      }
    }, 10_000)
    const load = await runLoad({
      url: b.url,
      paths,
      headers: AUTH,
      connections: cfg.connections,
      durationS: cfg.memoryS,
      serverPid: b.pid,
    })
    clearInterval(every)
    const rssAfterMb = procStatusMb(b.pid, 'VmRSS')
    const hwmMb = procStatusMb(b.pid, 'VmHWM')
    const text = await (await fetch(`${b.url}/metrics`)).text()
    const rssBytes = metric(text, 'process_resident_memory_bytes')
    const heapBytes = metric(text, 'nodejs_heap_size_used_bytes')
    const result: MemoryResult = {
      credentials: 100,
      loadSeconds: cfg.memoryS,
      load,
      rssBeforeMb,
      rssAfterMb,
      hwmMb,
      trend,
      metricsRssMb: rssBytes === undefined ? undefined : rssBytes / 2 ** 20,
      heapUsedMb: heapBytes === undefined ? undefined : heapBytes / 2 ** 20,
    }
    ctx.log(
      `  RSS ${rssBeforeMb.toFixed(1)} MB at ready -> ${rssAfterMb.toFixed(1)} MB after ${cfg.memoryS} s at ${load.rps.toFixed(0)} req/s (peak ${hwmMb.toFixed(1)} MB; /metrics ${result.metricsRssMb?.toFixed(1)} MB, heap used ${result.heapUsedMb?.toFixed(1)} MB); every 10 s: ${trend.map((x) => x.rssMb.toFixed(0)).join(', ')} MB`,
    )
    return result
  } finally {
    await b.stop()
  }
}
