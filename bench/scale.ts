import { createSimulator, type PeerStats } from '../src/simulator/server.js'
import { sleep, waitForStatus } from '../tools/process.js'
import {
  type Broker,
  type BrokerOptions,
  credentials,
  newEncryptionKey,
  newKeyPrefix,
  simulatorSecret,
  spawnBroker,
  waitReady,
  warnings,
  writeConfig,
} from './broker.js'
import { onCleanup } from './cleanup.js'
import { vmRssMb } from './growth.js'
import type { Ctx } from './hot-path.js'
import { createPortOwners } from './ports.js'
import { monitorRedis, type SeenCommand } from './redis-monitor.js'
import { type MintFigures, mintFigures, type RedisFigures, redisFigures } from './scale-figures.js'

/**
 * The fleet-scale phase: BENCH_FLEET_SCALE_REPLICAS brokers share BENCH_FLEET_SCALE_CREDENTIALS
 * credentials on one Redis, with tokens the simulator grants for BENCH_FLEET_SCALE_LIFETIME seconds,
 * so several refresh cycles fit in a couple of minutes. After a cold start of all of them at once it
 * watches BENCH_FLEET_SCALE_CYCLES refresh cycles: every upstream token request (the simulator, per
 * replica by the connection's port), every Redis command (MONITOR, per replica), then each replica's
 * RSS, and finally starts one more replica on the stored tokens and times it to ready.
 *
 * The cold start's tokens are granted lifetimes that bring every credential due at one moment: with
 * lifetimes of seconds a cold start would otherwise spread them over a good part of the refresh
 * window by itself, which at production lifetimes (hours) it does not. So the first cycle is every
 * credential coming due together, and the cycles after it refresh credentials minted together.
 */

/** The broker's defaults, passed explicitly so the figures know what they are judged against. */
export const REFRESH_MARGIN = 0.2
export const UPSTREAM_CONCURRENCY = 4

export interface ScaleResult {
  replicas: number
  credentials: number
  cycles: number
  lifetimeS: number
  latencyMs: number
  refreshMargin: number
  upstreamConcurrency: number
  coldStart: {
    ms: number
    requests: number
    /** Credentials not minted exactly once. */
    notOnce: number
    /** Upstream token requests and the most in flight at once, per replica. */
    peers: Record<string, PeerStats>
    maxInFlightAll: number
  }
  /** From the end of the cold start to the end of the last counted cycle, s. */
  windowS: number
  /** Cold-start tokens whose lifetime brought them due at the common moment (the others: the plain lifetime). */
  aligned: number
  mints: MintFigures & {
    /** Upstream token requests in the window: the simulator's counter, and /metrics summed over replicas. */
    requests: number
    metricsRequests: number | undefined
  }
  /** The same during the refresh cycles (and the extra replica's start); requests no replica was found for. */
  upstream: { peers: Record<string, PeerStats>; maxInFlightAll: number; unattributed: number }
  redis: RedisFigures
  start: { ms: number; ownMints: number; fleetMints: number; notOk: number; rssMb: number }
  /** Each replica at the end of the cycles: VmRSS, and the V8 heap (used, reserved) and external memory from /metrics, MB. */
  idle: {
    rssMb: Record<string, number>
    heapUsedMb: Record<string, number | undefined>
    heapTotalMb: Record<string, number | undefined>
    externalMb: Record<string, number | undefined>
  }
  /** The largest replica's RSS every RSS_EVERY_MS from the end of the cold start, MB. */
  rssTrendMb: number[]
  /** The last warn-level lines of each replica that wrote any. */
  warnings: Record<string, string[]>
}

const POLL_MS = 500
const LOG_LIMIT = 1_000_000
/** The first refresh is due this long after the cold start could have been due itself: room for the cold start. */
const COLD_START_ALLOWANCE_MS = 20_000
export const RSS_EVERY_MS = 5000

/** Sum of one metric's series in a Prometheus text, or undefined when it has none. */
function metricSum(text: string, name: string): number | undefined {
  let sum: number | undefined
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'gm'))) {
    sum = (sum ?? 0) + Number(m[1])
  }
  return sum
}

export const maxInFlight = (peers: Record<string, PeerStats>): number =>
  Math.max(0, ...Object.values(peers).map((p) => p.maxInFlight))

const scrape = async (b: Broker) => (await fetch(`${b.url}/metrics`)).text()

async function mintsOnMetrics(brokers: Broker[]): Promise<number | undefined> {
  let total = 0
  for (const b of brokers) {
    const n = metricSum(await scrape(b), 'token_broker_mints_total')
    if (n === undefined) return undefined
    total += n
  }
  return total
}

async function idleMemory(fleet: Broker[]): Promise<ScaleResult['idle']> {
  const rssMb = Object.fromEntries(fleet.map((b) => [b.name, vmRssMb(b.pid)]))
  const texts = await Promise.all(fleet.map(async (b) => [b.name, await scrape(b)] as const))
  const mb = (name: string) =>
    Object.fromEntries(
      texts.map(([broker, text]) => {
        const bytes = metricSum(text, name)
        return [broker, bytes === undefined ? undefined : bytes / 2 ** 20]
      }),
    )
  return {
    rssMb,
    heapUsedMb: mb('nodejs_heap_size_used_bytes'),
    heapTotalMb: mb('nodejs_heap_size_total_bytes'),
    externalMb: mb('nodejs_external_memory_bytes'),
  }
}

export async function scale(ctx: Ctx): Promise<ScaleResult> {
  const s = ctx.cfg.scale
  const lifetimeMs = s.lifetimeS * 1000
  const owners = createPortOwners()
  const launchedAt = Date.now()
  const firstDue = launchedAt + (1 - REFRESH_MARGIN) * lifetimeMs + COLD_START_ALLOWANCE_MS
  let aligning = true
  let aligned = 0
  /** The lifetime whose refresh moment (REFRESH_MARGIN of it left) is firstDue; none once too close. */
  const dueTogether = (now: number): number | undefined => {
    if (!aligning) return undefined
    const seconds = (firstDue - now) / (1 - REFRESH_MARGIN) / 1000
    if (seconds < s.lifetimeS / 2) return undefined
    aligned++
    return Math.round(seconds * 1000) / 1000
  }
  const sim = createSimulator({
    secrets: simulatorSecret,
    peer: ({ port }) => owners.owner(port),
    lifetime: (_id, now) => dueTogether(now),
    logLimit: LOG_LIMIT,
  })
  const simUrl = await sim.listen(0, '127.0.0.1')
  const stopSim = onCleanup(() => sim.close())
  const behaviour = { expiresIn: s.lifetimeS, latencyMs: s.latencyMs }
  sim.behave('*', behaviour)

  const creds = credentials('scale', s.credentials, 'mixed')
  const ids = creds.map((c) => c.upstreamId)
  const configPath = writeConfig(simUrl, creds)
  const base: Omit<BrokerOptions, 'name'> = {
    simUrl,
    creds,
    redisUrl: ctx.redisUrl,
    keyPrefix: newKeyPrefix('scale'),
    encryptionKey: newEncryptionKey(),
    env: { REFRESH_MARGIN: String(REFRESH_MARGIN), UPSTREAM_CONCURRENCY: String(UPSTREAM_CONCURRENCY) },
  }
  const brokers: Broker[] = []
  const spawn = async (name: string) => {
    const b = await spawnBroker({ ...base, name }, configPath)
    owners.add(name, b.pid)
    brokers.push(b)
    return b
  }

  try {
    // 1. Cold start: every replica at once on an empty prefix.
    let t0 = performance.now()
    const fleet: Broker[] = []
    for (let i = 0; i < s.replicas; i++) fleet.push(await spawn(`scale-${i}`))
    await Promise.all(fleet.map((b) => waitReady(b, 300_000)))
    const coldMs = performance.now() - t0
    aligning = false
    const coldLog = [...sim.requests]
    const coldStart = {
      ms: coldMs,
      requests: sim.mints(),
      notOnce: ids.filter((id) => sim.mints(id) !== 1).length,
      peers: sim.peers(),
      maxInFlightAll: sim.maxInFlight(),
    }
    ctx.log(
      `  cold start of ${s.replicas} replicas x ${s.credentials} credentials: ready in ${(coldMs / 1000).toFixed(1)} s, ${coldStart.requests} upstream requests (${coldStart.notOnce} credentials not minted exactly once), most in flight per replica ${maxInFlight(coldStart.peers)}`,
    )

    // 2. The refresh cycles, counted from here: a clean slate at the simulator, Redis watched.
    const metricsBefore = await mintsOnMetrics(fleet)
    const monitor = await monitorRedis(ctx.redisUrl, (port) => owners.owner(port))
    // One synchronous step: no request can arrive between the reset and the behaviour.
    sim.reset()
    sim.behave('*', behaviour)
    const from = Date.now()
    const figures = (until: number, commands: SeenCommand[] = []) =>
      mintFigures({
        log: [...coldLog, ...sim.requests],
        commands,
        ids,
        from,
        until,
        cycles: s.cycles,
        lifetimeMs,
        margin: REFRESH_MARGIN,
      })
    const rssTrendMb: number[] = []
    const sampleRss = () => rssTrendMb.push(Math.max(...fleet.map((b) => vmRssMb(b.pid))))
    sampleRss()
    let lastRss = performance.now()
    const deadline = firstDue + s.cycles * lifetimeMs + 30_000
    while (Date.now() < deadline && figures(Date.now()).incomplete > 0) {
      await sleep(POLL_MS)
      if (performance.now() - lastRss >= RSS_EVERY_MS) {
        sampleRss()
        lastRss = performance.now()
      }
    }
    // Room for a late second mint of the last cycle, well before the next cycle begins.
    await sleep(Math.min(3000, (lifetimeMs * (1 - REFRESH_MARGIN)) / 4))
    const until = Date.now()
    const commands = await monitor.stop()
    const mints = figures(until, commands)
    const requests = sim.mints()
    const metricsAfter = await mintsOnMetrics(fleet)
    const peers = sim.peers()
    const idle = await idleMemory(fleet)
    const redis = redisFigures({
      commands,
      replicas: fleet.map((b) => b.name),
      mintTimes: sim.requests.map((r) => r.at),
      from,
      until,
    })
    ctx.log(
      `  ${s.cycles} refresh cycles in ${((until - from) / 1000).toFixed(0)} s: ${mints.perCredentialPerCycle.toFixed(3)} mints per credential per cycle (${mints.extra} extra, ${mints.incomplete} credentials short of ${s.cycles} cycles), most in flight per replica ${maxInFlight(peers)}, Redis commands per replica between refreshes ${redis.perReplica.map((r) => r.quietPerS.toFixed(3)).join('/')} per s over ${redis.quietS} quiet s`,
    )

    // 3. One more replica on the stored tokens: spawn to /readyz 200, and who minted meanwhile.
    const mintsBefore = sim.mints()
    t0 = performance.now()
    const extra = await spawn('scale-start')
    await waitForStatus(`${extra.url}/readyz`, {
      status: 200,
      timeoutMs: 60_000,
      child: extra.child,
      intervalMs: 20,
    })
    const startMs = performance.now() - t0
    const ready = (await (await fetch(`${extra.url}/readyz`)).json()) as {
      credentials: Record<string, { state: string }>
    }
    const start = {
      ms: startMs,
      ownMints: sim.peers()['scale-start']?.requests ?? 0,
      fleetMints: sim.mints() - mintsBefore,
      notOk: Object.values(ready.credentials).filter((c) => c.state !== 'ok').length,
      rssMb: vmRssMb(extra.pid),
    }
    ctx.log(
      `  one more replica on ${s.credentials} stored tokens: ready in ${startMs.toFixed(0)} ms, ${start.ownMints} mints by it (${start.fleetMints} by the whole fleet meanwhile), ${start.notOk} credentials not ok`,
    )

    const warned = Object.fromEntries(
      brokers.map((b) => [b.name, warnings(b)] as const).filter(([, lines]) => lines.length > 0),
    )
    return {
      replicas: s.replicas,
      credentials: s.credentials,
      cycles: s.cycles,
      lifetimeS: s.lifetimeS,
      latencyMs: s.latencyMs,
      refreshMargin: REFRESH_MARGIN,
      upstreamConcurrency: UPSTREAM_CONCURRENCY,
      coldStart,
      aligned,
      windowS: (until - from) / 1000,
      mints: {
        ...mints,
        requests,
        metricsRequests:
          metricsBefore === undefined || metricsAfter === undefined
            ? undefined
            : metricsAfter - metricsBefore,
      },
      upstream: {
        peers: sim.peers(),
        maxInFlightAll: sim.maxInFlight(),
        unattributed: sim.requests.filter((r) => r.peer === undefined).length,
      },
      redis,
      start,
      idle,
      rssTrendMb,
      warnings: warned,
    }
  } finally {
    await Promise.all(brokers.map((b) => b.stop()))
    stopSim()
    await sim.close()
  }
}
