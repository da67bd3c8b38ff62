import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Child, freePort, TSX, waitForStatus } from '../tools/process.js'
import {
  AUTH,
  type Broker,
  type BrokerOptions,
  credentials,
  newEncryptionKey,
  newKeyPrefix,
  spawnBroker,
  waitReady,
  writeConfig,
} from './broker.js'
import { onCleanup, startBenchChild } from './cleanup.js'
import type { BenchConfig } from './config.js'
import { CONTENDED_CORES, waitForQuiet } from './cpu.js'
import { hasErrors, type LoadOptions, type LoadResult, runLoad } from './load.js'

export interface Ctx {
  cfg: BenchConfig
  simUrl: string
  redisUrl: string
  log: (line: string) => void
}

export type TargetName = 'broker' | 'fastify' | 'fastify+logger' | 'node:http'
/** Every target of a round, in the order they run. */
export const TARGETS: readonly TargetName[] = ['broker', 'fastify', 'fastify+logger', 'node:http']

export interface HotRound {
  round: number
  broker: LoadResult
  fastify: LoadResult
  /** Bare Fastify on the broker's server settings and logger: the framework's share of the gap. */
  'fastify+logger': LoadResult
  'node:http': LoadResult
  brokerOverFastify: number
  brokerOverNode: number
  fastifyLoggerOverFastify: number
}

export interface HotPathResult {
  path: string
  responseBytes: number
  contentType: string
  cacheControl: string
  rounds: HotRound[]
  median: {
    brokerOverFastify: number
    brokerOverNode: number
    fastifyLoggerOverFastify: number
    rps: Record<TargetName, number>
    p50: Record<TargetName, number>
    p99: Record<TargetName, number>
    /** Server CPU µs per request, and the broker's over bare Fastify's (median of paired rounds). */
    usPerReq: Record<TargetName, number>
    cpuBrokerOverFastify: number
  }
  paced?: { targetRps: number; result: LoadResult }
  errors: boolean
}

/**
 * CPU use during a run, in cores: the server, the load generator, others; plus a warning when
 * other processes used the CPU (the run's numbers are then suspect).
 */
export const contention = (r: LoadResult): string => {
  if (!r.cpu) return ''
  const { server, loader, foreign } = r.cpu
  const per = r.serverUsPerReq === undefined ? '' : ` (${r.serverUsPerReq.toFixed(1)} µs/req)`
  const use = `  cpu: server ${server.toFixed(2)}${per}, autocannon ${loader.toFixed(2)}, other ${foreign.toFixed(2)}`
  return foreign >= CONTENDED_CORES ? `${use} [contended]` : use
}

/**
 * One measured run against a started server: wait for a quiet machine, warm up, then load it (for
 * `cfg.durationS` as fast as it answers, unless `run` paces it).
 */
export async function measure(
  cfg: BenchConfig,
  target: { url: string; pid: number },
  path: string,
  run: Pick<LoadOptions, 'durationS' | 'overallRate'> = { durationS: cfg.durationS },
): Promise<LoadResult> {
  const load = {
    url: target.url,
    paths: [path],
    headers: AUTH,
    connections: cfg.connections,
    serverPid: target.pid,
  }
  await waitForQuiet(cfg.quietS, target.pid)
  if (cfg.warmupS > 0) await runLoad({ ...load, durationS: cfg.warmupS })
  return runLoad({ ...load, ...run })
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length === 0 ? Number.NaN : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/** One broker config for the hot path: an IMS and an EQP credential, three clients; requests hit the IMS one. */
export function hotSetup(ctx: Ctx) {
  const creds = credentials('hot', 2, 'mixed')
  const opts: BrokerOptions = {
    name: 'broker',
    simUrl: ctx.simUrl,
    creds,
    redisUrl: ctx.redisUrl,
    keyPrefix: newKeyPrefix('hot'),
    encryptionKey: newEncryptionKey(),
  }
  const configPath = writeConfig(ctx.simUrl, creds)
  return { opts, configPath, path: `/v1/tokens/${creds[0]!.id}` }
}

export async function startReadyBroker(opts: BrokerOptions, configPath: string): Promise<Broker> {
  const b = await spawnBroker(opts, configPath)
  try {
    await waitReady(b)
  } catch (err) {
    await b.stop()
    throw err
  }
  return b
}

interface Running {
  url: string
  pid: number
  stop(): Promise<void>
}

async function startBare(
  which: Exclude<TargetName, 'broker'>,
  bodyFile: string,
  contentType: string,
  path: string,
): Promise<Running> {
  const port = await freePort()
  const script = which === 'node:http' ? 'bench/targets/node-http.ts' : 'bench/targets/fastify-bare.ts'
  const child: Child = startBenchChild(which, process.execPath, ['--import', TSX, script], {
    env: {
      ...process.env,
      PORT: String(port),
      BENCH_BODY_FILE: bodyFile,
      BENCH_CONTENT_TYPE: contentType,
      BENCH_FASTIFY_AS_BROKER: which === 'fastify+logger' ? '1' : '0',
    },
  })
  const url = `http://127.0.0.1:${port}`
  try {
    await waitForStatus(`${url}${path}`, { child, timeoutMs: 30_000 })
  } catch (err) {
    await child.stop()
    throw err
  }
  return {
    url,
    pid: child.pid,
    stop: async () => {
      await child.stop()
    },
  }
}

async function fetchOnce(url: string) {
  const res = await fetch(url, { headers: AUTH })
  const body = await res.text()
  return { status: res.status, body, headers: res.headers }
}

export async function hotPath(ctx: Ctx): Promise<HotPathResult> {
  const { cfg } = ctx
  const { opts, configPath, path } = hotSetup(ctx)

  // Capture the broker's answer once: the bare targets serve exactly these bytes.
  const first = await startReadyBroker(opts, configPath)
  const captured = await fetchOnce(`${first.url}${path}`)
  await first.stop()
  if (captured.status !== 200)
    throw new Error(`hot path: broker answered ${captured.status}: ${captured.body}`)
  const contentType = captured.headers.get('content-type') ?? ''
  const cacheControl = captured.headers.get('cache-control') ?? ''
  const dir = mkdtempSync(join(tmpdir(), 'token-broker-bench-body-'))
  onCleanup(async () => rmSync(dir, { recursive: true, force: true }))
  const bodyFile = join(dir, 'body.json')
  writeFileSync(bodyFile, captured.body)
  ctx.log(
    `hot path: GET ${path}, ${Buffer.byteLength(captured.body)} B body, content-type "${contentType}", cache-control "${cacheControl}"`,
  )

  const start = async (t: TargetName): Promise<Running> => {
    if (t === 'broker') {
      const b = await startReadyBroker(opts, configPath)
      return { url: b.url, pid: b.pid, stop: b.stop }
    }
    return startBare(t, bodyFile, contentType, path)
  }

  const rounds: HotRound[] = []
  const order = TARGETS
  for (let round = 1; round <= cfg.rounds; round++) {
    const results = {} as Record<TargetName, LoadResult>
    for (const t of order) {
      // One server at a time: autocannon here, the server alone in its process.
      const target = await start(t)
      try {
        const check = await fetchOnce(`${target.url}${path}`)
        const same =
          check.status === 200 &&
          check.body.length === captured.body.length &&
          check.headers.get('content-type') === contentType &&
          check.headers.get('cache-control') === cacheControl
        if (!same) {
          throw new Error(
            `hot path: ${t} answered ${check.status} with ${check.body.length} B (${check.headers.get('content-type')}, ${check.headers.get('cache-control')}), not what the broker sends`,
          )
        }
        results[t] = await measure(cfg, target, path)
      } finally {
        await target.stop()
      }
      const r = results[t]
      ctx.log(
        `  round ${round} ${t.padEnd(14)} ${r.rps.toFixed(0).padStart(6)} req/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms${contention(r)}${hasErrors(r) ? `  ERRORS non2xx=${r.non2xx} errors=${r.errors} timeouts=${r.timeouts}` : ''}`,
      )
    }
    rounds.push({
      round,
      broker: results.broker,
      fastify: results.fastify,
      'fastify+logger': results['fastify+logger'],
      'node:http': results['node:http'],
      brokerOverFastify: results.broker.rps / results.fastify.rps,
      brokerOverNode: results.broker.rps / results['node:http'].rps,
      fastifyLoggerOverFastify: results['fastify+logger'].rps / results.fastify.rps,
    })
  }

  const per = (f: (r: LoadResult) => number) =>
    Object.fromEntries(order.map((t) => [t, median(rounds.map((r) => f(r[t])))])) as Record<
      TargetName,
      number
    >
  const result: HotPathResult = {
    path,
    responseBytes: Buffer.byteLength(captured.body),
    contentType,
    cacheControl,
    rounds,
    median: {
      brokerOverFastify: median(rounds.map((r) => r.brokerOverFastify)),
      brokerOverNode: median(rounds.map((r) => r.brokerOverNode)),
      fastifyLoggerOverFastify: median(rounds.map((r) => r.fastifyLoggerOverFastify)),
      rps: per((r) => r.rps),
      p50: per((r) => r.p50),
      p99: per((r) => r.p99),
      usPerReq: per((r) => r.serverUsPerReq ?? Number.NaN),
      cpuBrokerOverFastify: median(
        rounds.map((r) => (r.broker.serverUsPerReq ?? Number.NaN) / (r.fastify.serverUsPerReq ?? Number.NaN)),
      ),
    },
    errors: rounds.some((r) => order.some((t) => hasErrors(r[t]))),
  }

  // Latency when the broker is not saturated: the same 64 connections paced at half its capacity.
  if (cfg.pacedS > 0) {
    const targetRps = Math.max(100, Math.round(result.median.rps.broker / 2))
    const b = await startReadyBroker(opts, configPath)
    try {
      const r = await measure(cfg, b, path, { durationS: cfg.pacedS, overallRate: targetRps })
      result.paced = { targetRps, result: r }
      if (hasErrors(r)) result.errors = true
      ctx.log(
        `  paced    broker at ${targetRps} req/s: ${r.rps.toFixed(0)} req/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms${contention(r)}`,
      )
    } finally {
      await b.stop()
    }
  }
  return result
}
