import { existsSync } from 'node:fs'
import { loadavg } from 'node:os'
import { createSimulator } from '../src/simulator/server.js'
import { brokerEntry, simulatorSecret } from './broker.js'
import { cleanupAll, installExitHandlers, onCleanup } from './cleanup.js'
import { type ClientResult, clientPhase, clientTargets, printClient } from './client.js'
import { benchConfig } from './config.js'
import { CONTENDED_CORES } from './cpu.js'
import { type FleetResult, fleet } from './fleet.js'
import { type GrowthResult, growth, type MemoryResult, memory } from './growth.js'
import { type Ctx, type HotPathResult, hotPath, median, TARGETS } from './hot-path.js'
import { type IdleResult, idle } from './idle.js'
import { hasErrors, type LoadResult } from './load.js'
import { findRedis } from './redis.js'
import { machine, type Target, table, writeResults } from './report.js'
import { type ScaleResult, scale } from './scale.js'
import { printScale, scaleTargets } from './scale-report.js'
import { type TlsResult, tlsPhase } from './tls.js'

/**
 * `npm run bench`: builds (package.json), then measures the broker as a separate process: its RSS
 * when idle (against a bare Fastify with a pino logger), its hot path against a bare Fastify route
 * (also on the broker's own Fastify settings and logger) and a bare node:http server, the fleet's
 * one-mint-per-event promise, a fleet at scale (mints per cycle, upstream requests in flight, Redis
 * commands, start on stored tokens, RSS), growth with the number of credentials and memory under
 * load; prints a table, and writes bench/results/.
 * Settings (env): BENCH_ROUNDS (3), BENCH_DURATION (10 s), BENCH_WARMUP (2 s), BENCH_CONNECTIONS (64),
 * BENCH_PACED_SECONDS (5; 0 = off), BENCH_GROWTH_ROUNDS (2), BENCH_GROWTH_DURATION (5 s),
 * BENCH_MEMORY_SECONDS (60), BENCH_IDLE_SECONDS (20), BENCH_IDLE_ROUNDS (3), BENCH_PHASES
 * (idle,fleet,scale,hot,growth,memory,client,tls or none; client settings in bench/client.ts), the
 * scale phase's BENCH_FLEET_SCALE_REPLICAS (5), BENCH_FLEET_SCALE_CREDENTIALS (1000),
 * BENCH_FLEET_SCALE_CYCLES (3), BENCH_FLEET_SCALE_LIFETIME (30 s token lifetime) and
 * BENCH_FLEET_SCALE_LATENCY_MS (50: the simulator's answer delay),
 * BENCH_QUIET_WAIT (0 s: wait up to this long for other processes to leave
 * the CPU before each run), BENCH_BROKER_ENTRY (another build's server.js), BENCH_NODE_ARGS (node
 * flags for every broker). bench/ab.ts compares two builds.
 */

const P99_TARGET_MS = 5
const RATIO_TARGET = 0.9
const GROWTH_TOLERANCE = 0.1
const RSS_TARGET_MB = 120
const IDLE_RSS_TARGET_MB = 70

const out = (line = '') => process.stdout.write(`${line}\n`)
const f0 = (n: number) => n.toFixed(0)
const f2 = (n: number) => n.toFixed(2)
const errs = (r: LoadResult) => `${r.non2xx}/${r.errors + r.timeouts}`
/** CPU cores used during the run: server / load generator / other processes. */
const other = (r: LoadResult) =>
  r.cpu === undefined
    ? '?'
    : `${r.cpu.server.toFixed(2)}/${r.cpu.loader.toFixed(2)}/${r.cpu.foreign.toFixed(2)}`
const contended = (r: LoadResult) => r.foreignCores !== undefined && r.foreignCores >= CONTENDED_CORES

interface Results {
  startedAt: string
  finishedAt?: string
  elapsedS?: number
  machine: ReturnType<typeof machine>
  settings: Record<string, unknown>
  redis: string
  loadAverageAtStart: number[]
  loadAverageAtEnd?: number[]
  idle?: IdleResult
  hotPath?: HotPathResult
  tls?: TlsResult
  fleet?: FleetResult
  scale?: ScaleResult
  growth?: GrowthResult
  memory?: MemoryResult
  client?: ClientResult
  targets?: Target[]
  errors: boolean
}

async function main(): Promise<void> {
  installExitHandlers()
  const cfg = benchConfig()
  const started = Date.now()
  const m = machine()
  out(`token-broker bench on ${m.cpus} x ${m.cpuModel}, node ${m.node}, ${m.os}`)
  out(
    `settings: ${cfg.rounds} rounds x ${cfg.durationS} s (+${cfg.warmupS} s warm-up), ${cfg.connections} connections, pipelining 1; phases: ${[...cfg.phases].join(', ')}${cfg.quietS ? `; waits up to ${cfg.quietS} s for a quiet CPU before each run` : ''}`,
  )
  out(
    `load average at start: ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  )
  if (!existsSync(brokerEntry())) throw new Error(`${brokerEntry()} is missing: run npm run build first`)

  const redis = await findRedis()
  out(`redis: ${redis.how} (${redis.url.replace(/\/\/[^@]*@/, '//***@')})`)
  const sim = createSimulator({ secrets: simulatorSecret })
  const simUrl = await sim.listen(0, '127.0.0.1')
  onCleanup(() => sim.close())
  const ctx: Ctx = { cfg, simUrl, redisUrl: redis.url, log: out }

  const results: Results = {
    startedAt: new Date(started).toISOString(),
    machine: m,
    settings: { ...cfg, phases: [...cfg.phases], brokerEntry: brokerEntry() },
    redis: redis.how,
    loadAverageAtStart: loadavg(),
    errors: false,
  }

  if (cfg.phases.has('idle')) {
    out(
      `\n== idle: RSS ${cfg.idleS} s after ready, in-memory store, an IMS and an EQP credential (the demo's setup), vs bare Fastify + pino`,
    )
    results.idle = await idle(ctx)
  }
  if (cfg.phases.has('fleet')) {
    out('\n== fleet: 3 replicas on one Redis')
    results.fleet = await fleet(ctx, sim)
  }
  if (cfg.phases.has('scale')) {
    const s = cfg.scale
    out(
      `\n== scale: ${s.replicas} replicas x ${s.credentials} credentials on one Redis, ${s.lifetimeS} s tokens, ${s.cycles} refresh cycles`,
    )
    results.scale = await scale(ctx)
  }
  if (cfg.phases.has('hot')) {
    out(
      `\n== hot path: broker vs bare Fastify (also on the broker's settings and logger) vs node:http, one server at a time`,
    )
    results.hotPath = await hotPath(ctx)
  }
  if (cfg.phases.has('tls')) {
    out('\n== tls: the hot path over HTTPS (TLS_CERT_FILE) vs plain HTTP, keep-alive, one server at a time')
    results.tls = await tlsPhase(ctx)
    const m = results.tls.median
    out(
      `  median: http ${m.httpRps.toFixed(0)} req/s, https ${m.httpsRps.toFixed(0)} req/s (x${m.httpsOverHttp.toFixed(2)}), https p99 ${m.httpsP99.toFixed(2)} ms, ${m.httpsUsPerReq.toFixed(1)} µs/req`,
    )
  }
  if (cfg.phases.has('growth')) {
    out('\n== growth: hot path with 1, 100, 1000 credentials')
    results.growth = await growth(ctx)
  }
  if (cfg.phases.has('memory')) {
    out(`\n== memory: one broker, 100 credentials, ${cfg.memoryS} s of load`)
    results.memory = await memory(ctx)
  }
  if (cfg.phases.has('client')) {
    out('\n== client: @token-broker/client, consumer CPU per call and broker requests per token lifetime')
    results.client = await clientPhase(ctx, sim)
  }

  results.targets = evaluate(results)
  const memLoad = results.memory?.load
  results.errors =
    !!results.hotPath?.errors ||
    !!results.tls?.errors ||
    !!results.growth?.errors ||
    (memLoad !== undefined && hasErrors(memLoad)) ||
    !!results.fleet?.events.some((e) => (e.non200 ?? 0) > 0)
  results.loadAverageAtEnd = loadavg()
  results.finishedAt = new Date().toISOString()
  results.elapsedS = (Date.now() - started) / 1000
  printSummary(results)
  const { file, latest } = writeResults(results)
  out(`\nresults: ${file} (and ${latest}); ${f0(results.elapsedS)} s in all`)
}

function allRuns(r: Results): LoadResult[] {
  const runs: LoadResult[] = []
  for (const round of r.hotPath?.rounds ?? []) runs.push(...TARGETS.map((t) => round[t]))
  if (r.hotPath?.paced) runs.push(r.hotPath.paced.result)
  for (const p of r.growth?.points ?? []) runs.push(...p.runs)
  if (r.memory) runs.push(r.memory.load)
  return runs
}

function evaluate(r: Results): Target[] {
  const targets: Target[] = []
  const idle = r.idle
  targets.push({
    name: `idle RSS < ${IDLE_RSS_TARGET_MB} MB (in-memory, demo's 2 credentials)`,
    pass: idle ? idle.median.brokerMb < IDLE_RSS_TARGET_MB : undefined,
    detail: idle
      ? `median ${idle.median.brokerMb.toFixed(1)} MB of ${idle.broker.length} runs (${idle.broker.map((x) => x.rssMb.toFixed(1)).join(', ')}) after ${idle.idleSeconds} s; bare Fastify + pino ${idle.median.referenceMb.toFixed(1)} MB`
      : 'idle phase not run',
  })
  const h = r.hotPath
  targets.push({
    name: `broker >= ${RATIO_TARGET}x bare Fastify req/s`,
    pass: h ? h.median.brokerOverFastify >= RATIO_TARGET : undefined,
    detail: h ? `median of paired rounds ${f2(h.median.brokerOverFastify)}x` : 'hot phase not run',
  })
  targets.push({
    name: `broker p99 < ${P99_TARGET_MS} ms at ${r.settings.connections} connections`,
    pass: h ? h.median.p99.broker < P99_TARGET_MS : undefined,
    detail: h
      ? `saturated rounds: ${h.rounds.map((x) => f2(x.broker.p99)).join(', ')} ms (median ${f2(h.median.p99.broker)})${h.paced ? `; paced at ${h.paced.targetRps} req/s: ${f2(h.paced.result.p99)} ms` : ''}`
      : 'hot phase not run',
  })
  const fl = r.fleet
  targets.push({
    name: 'fleet: exactly one mint per credential per event',
    pass: fl ? fl.ok : undefined,
    detail: fl
      ? `${fl.events.map((e) => `${e.event}: ${e.ok ? 'ok' : 'MISMATCH'}`).join('; ')}; refresh answers share one new token: ${fl.refresh.sameNewToken && fl.refresh.differsFromRejected}`
      : 'fleet phase not run',
  })
  const g = r.growth
  targets.push({
    name: `req/s flat across 1/100/1000 credentials (within ±${GROWTH_TOLERANCE * 100}%)`,
    pass: g ? g.maxDeviation <= GROWTH_TOLERANCE : undefined,
    detail: g
      ? `${g.points.map((p) => `${p.credentials}: ${(p.relative * 100).toFixed(1)}%`).join(', ')} of the 1-credential req/s (server CPU/req: ${g.points.map((p) => `${(p.relativeCpu * 100).toFixed(1)}%`).join(', ')})`
      : 'growth phase not run',
  })
  const mem = r.memory
  targets.push({
    name: `RSS < ${RSS_TARGET_MB} MB (100 credentials, after load)`,
    pass: mem ? mem.rssAfterMb < RSS_TARGET_MB : undefined,
    detail: mem
      ? `${mem.rssAfterMb.toFixed(1)} MB after ${mem.loadSeconds} s (peak ${mem.hwmMb.toFixed(1)} MB)`
      : 'memory phase not run',
  })
  targets.push(...scaleTargets(r.scale))
  targets.push(...clientTargets(r.client))
  return targets
}

function printSummary(r: Results): void {
  out('\n================ summary ================')
  out(
    `machine: ${r.machine.cpus} x ${r.machine.cpuModel}, ${r.machine.totalMemMb} MB, node ${r.machine.node}, ${r.machine.os}`,
  )
  const idle = r.idle
  if (idle) {
    out(
      `\nidle: ${idle.credentials} credentials, in-memory store, VmRSS ${idle.idleSeconds} s after ready (MB)${idle.extraCaCertsLeftOut ? "; the bench's NODE_EXTRA_CA_CERTS left out" : ''}`,
    )
    out(
      table(
        ['process', 'median RSS', 'runs', 'peak (VmHWM)', 'heap used'],
        [
          [
            'broker',
            idle.median.brokerMb.toFixed(1),
            idle.broker.map((x) => x.rssMb.toFixed(1)).join(' '),
            median(idle.broker.map((x) => x.hwmMb)).toFixed(1),
            idle.broker.map((x) => x.heapUsedMb?.toFixed(1) ?? '?').join(' '),
          ],
          [
            'bare Fastify + pino',
            idle.median.referenceMb.toFixed(1),
            idle.reference.map((x) => x.rssMb.toFixed(1)).join(' '),
            median(idle.reference.map((x) => x.hwmMb)).toFixed(1),
            '',
          ],
        ],
      ),
    )
  }
  const h = r.hotPath
  if (h) {
    out(
      `\nhot path: GET ${h.path} (${h.responseBytes} B), ${r.settings.connections} connections, ${r.settings.durationS} s per round`,
    )
    const rows: (string | number)[][] = []
    for (const round of h.rounds) {
      for (const t of TARGETS) {
        const x = round[t]
        rows.push([`${round.round}`, t, f0(x.rps), f2(x.p50), f2(x.p99), errs(x), other(x)])
      }
    }
    for (const t of TARGETS) {
      rows.push(['median', t, f0(h.median.rps[t]), f2(h.median.p50[t]), f2(h.median.p99[t]), '', ''])
    }
    out(table(['round', 'target', 'req/s', 'p50 ms', 'p99 ms', 'non2xx/err', 'cpu srv/ac/other'], rows))
    out(
      `broker/Fastify ${f2(h.median.brokerOverFastify)}x, broker/node:http ${f2(h.median.brokerOverNode)}x (medians of paired rounds: ${h.rounds.map((x) => `${f2(x.brokerOverFastify)}/${f2(x.brokerOverNode)}`).join(', ')})`,
    )
    out(
      `bare Fastify on the broker's settings and logger (no broker code): ${f2(h.median.fastifyLoggerOverFastify)}x bare Fastify`,
    )
    const us = h.median.usPerReq
    out(
      `server CPU per request (less sensitive to how the 2 cores are shared): ${TARGETS.map((t) => `${t} ${us[t].toFixed(1)} µs`).join(', ')}; broker/Fastify ${f2(h.median.cpuBrokerOverFastify)}x`,
    )
    if (h.paced) {
      const p = h.paced.result
      out(
        `paced broker at ${h.paced.targetRps} req/s (half its capacity): p50 ${f2(p.p50)} ms, p90 ${f2(p.p90)} ms, p99 ${f2(p.p99)} ms, non2xx/err ${errs(p)}`,
      )
    }
  }
  const fl = r.fleet
  if (fl) {
    out(
      `\nfleet: ${fl.replicas} replicas, credentials ${fl.credentials.join(', ')}; upstream mints per credential`,
    )
    out(
      table(
        ['event', 'mints', 'expected', 'non-200', 'ms', 'ok'],
        fl.events.map((e) => [
          e.event,
          fl.credentials.map((id) => e.mints[id]).join('/'),
          fl.credentials.map((id) => e.expected[id]).join('/'),
          e.non200 ?? '-',
          f0(e.ms),
          e.ok ? 'yes' : 'NO',
        ]),
      ),
    )
    out(
      `refresh of ${fl.refresh.credential}: ${fl.refresh.distinctTokens} distinct token(s) in the answers, new != rejected: ${fl.refresh.differsFromRejected}, every replica serves it after: ${fl.refresh.replicasAgreeAfter}; /metrics mints_total{success} summed over replicas: ${fl.credentials.map((id) => fl.metricsMints[id]).join('/')}`,
    )
  }
  if (r.scale) printScale(r.scale, out)
  const g = r.growth
  if (g) {
    out(
      `\ngrowth: requests rotate over every configured credential (autocannon requests array); ${g.rounds} rounds x ${r.settings.growthS} s, medians; "vs 1" = median of ratios to the 1-credential broker in the same round`,
    )
    out(
      table(
        ['credentials', 'ready s', 'req/s', 'vs 1', 'µs/req', 'cpu vs 1', 'p50 ms', 'p99 ms', 'non2xx/err'],
        g.points.map((p) => [
          p.credentials,
          (p.readyMs / 1000).toFixed(1),
          f0(p.rps),
          `${(p.relative * 100).toFixed(1)}%`,
          p.usPerReq.toFixed(1),
          `${(p.relativeCpu * 100).toFixed(1)}%`,
          f2(p.p50),
          f2(p.p99),
          `${p.runs.reduce((a, x) => a + x.non2xx, 0)}/${p.runs.reduce((a, x) => a + x.errors + x.timeouts, 0)}`,
        ]),
      ),
    )
  }
  const mem = r.memory
  if (mem) {
    out(
      `\nmemory: 100 credentials, ${mem.loadSeconds} s at ${f0(mem.load.rps)} req/s: VmRSS ${mem.rssBeforeMb.toFixed(1)} MB at ready -> ${mem.rssAfterMb.toFixed(1)} MB after (VmHWM ${mem.hwmMb.toFixed(1)} MB; /metrics process_resident_memory_bytes ${mem.metricsRssMb?.toFixed(1) ?? '?'} MB; heap used ${mem.heapUsedMb?.toFixed(1) ?? '?'} MB)`,
    )
    out(`  VmRSS every 10 s under load: ${mem.trend.map((x) => x.rssMb.toFixed(0)).join(', ')} MB`)
  }
  if (r.client) printClient(r.client, out)
  out('\ntargets:')
  for (const t of r.targets ?? []) {
    const mark = t.pass === undefined ? 'SKIP' : t.pass ? 'PASS' : 'FAIL'
    out(`  ${mark}  ${t.name}: ${t.detail}`)
  }
  if (r.errors) out('  FLAGGED  some requests were not 2xx or failed: see non2xx/err above')
  else out('  every request answered 2xx')
  const runs = allRuns(r)
  const busy = runs.filter(contended)
  if (busy.length > 0) {
    out(
      `  FLAGGED  ${busy.length} of ${runs.length} measured runs shared the CPU with other processes (>= ${CONTENDED_CORES} cores, last figure of "cpu srv/ac/other" above): their req/s and latency are understated; rerun on a quiet machine or with BENCH_QUIET_WAIT=30`,
    )
  } else if (runs.length > 0)
    out(`  no measured run shared the CPU with other processes (< ${CONTENDED_CORES} cores)`)
}

main().then(
  async () => {
    await cleanupAll()
    process.exit(0)
  },
  async (err: unknown) => {
    process.stderr.write(`\nbench failed: ${(err as Error).stack ?? String(err)}\n`)
    await cleanupAll()
    process.exit(1)
  },
)
