import { NODE_FLAGS } from '../src/node-flags.js'
import { freePort, sleep, waitForStatus } from '../tools/process.js'
import {
  type BenchCredential,
  credentials,
  extraNodeArgs,
  spawnBroker,
  waitReady,
  writeConfig,
} from './broker.js'
import { startBenchChild } from './cleanup.js'
import { procStatusMb } from './growth.js'
import { type Ctx, median } from './hot-path.js'

/** One process's memory after idling, in MB (MiB). */
export interface IdleRun {
  rssMb: number
  /** VmHWM: the most it held at any moment, start-up included. */
  hwmMb: number
  /** nodejs_heap_size_used_bytes from /metrics, read after the RSS (the broker only). */
  heapUsedMb?: number
}

export interface IdleResult {
  idleSeconds: number
  credentials: number
  broker: IdleRun[]
  /** Bare Fastify with a pino logger on the same node flags (bench/targets/fastify-pino.mjs). */
  reference: IdleRun[]
  median: { brokerMb: number; referenceMb: number }
  /** The bench's NODE_EXTRA_CA_CERTS, left out of this phase (see idle()). */
  extraCaCertsLeftOut: boolean
}

/**
 * What an idle broker holds: the demo's setup (an IMS and an EQP credential, no REDIS_URL, so the
 * in-memory store, LOG_LEVEL info), on the production node flags, read from /proc after it has
 * idled for BENCH_IDLE_SECONDS past /readyz 200. Long enough for V8's memory reducer, which shrinks
 * the heap a few seconds after start-up settles. Each round also measures a bare Fastify with a pino
 * logger the same way: what the framework alone holds. Medians over BENCH_IDLE_ROUNDS fresh processes,
 * since a background compiler thread sometimes leaves allocator pages behind for the process's life.
 * NODE_EXTRA_CA_CERTS, if the bench has it, is not passed on: Node parses that file at start in every
 * process, so it measures the machine's CA bundle rather than the broker (docs/performance.md).
 */
export async function idle(ctx: Ctx): Promise<IdleResult> {
  const extraCaCertsLeftOut = !!process.env.NODE_EXTRA_CA_CERTS
  if (extraCaCertsLeftOut) {
    ctx.log(
      '  NODE_EXTRA_CA_CERTS is left out of this phase: every node process would parse that file at start, broker and reference alike',
    )
  }
  const creds = credentials('idle', 2, 'mixed')
  const configPath = writeConfig(ctx.simUrl, creds)
  const broker: IdleRun[] = []
  const reference: IdleRun[] = []
  for (let round = 1; round <= ctx.cfg.idleRounds; round++) {
    const b = await idleBroker(ctx, creds, configPath)
    const r = await idleReference(ctx.cfg.idleS)
    broker.push(b)
    reference.push(r)
    ctx.log(
      `  round ${round}: broker ${b.rssMb.toFixed(1)} MB RSS (peak ${b.hwmMb.toFixed(1)} MB, heap used ${b.heapUsedMb?.toFixed(1) ?? '?'} MB); bare Fastify + pino ${r.rssMb.toFixed(1)} MB (peak ${r.hwmMb.toFixed(1)} MB)`,
    )
  }
  return {
    idleSeconds: ctx.cfg.idleS,
    credentials: creds.length,
    broker,
    reference,
    median: {
      brokerMb: median(broker.map((x) => x.rssMb)),
      referenceMb: median(reference.map((x) => x.rssMb)),
    },
    extraCaCertsLeftOut,
  }
}

/** Not passed on to the processes of this phase (see idle()). */
const LEFT_OUT = ['NODE_EXTRA_CA_CERTS'] as const

function withoutLeftOut(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const kept = { ...env }
  for (const name of LEFT_OUT) delete kept[name]
  return kept
}

const readRun = (pid: number): IdleRun => ({
  rssMb: procStatusMb(pid, 'VmRSS'),
  hwmMb: procStatusMb(pid, 'VmHWM'),
})

/** A fresh broker, idle for BENCH_IDLE_SECONDS past ready. */
async function idleBroker(ctx: Ctx, creds: BenchCredential[], configPath: string): Promise<IdleRun> {
  const b = await spawnBroker(
    { name: 'broker-idle', simUrl: ctx.simUrl, creds, env: { LOG_LEVEL: 'info' }, unset: LEFT_OUT },
    configPath,
  )
  try {
    await waitReady(b)
    await sleep(ctx.cfg.idleS * 1000)
    const run = readRun(b.pid)
    const text = await (await fetch(`${b.url}/metrics`)).text()
    const heap = /^nodejs_heap_size_used_bytes ([0-9.e+]+)/m.exec(text)?.[1]
    return heap === undefined ? run : { ...run, heapUsedMb: Number(heap) / 2 ** 20 }
  } finally {
    await b.stop()
  }
}

/** A fresh bare Fastify with a pino logger, idle as long, on the same node flags. */
async function idleReference(idleS: number): Promise<IdleRun> {
  const port = await freePort()
  const child = startBenchChild(
    'fastify-pino',
    process.execPath,
    [...NODE_FLAGS, ...extraNodeArgs(), 'bench/targets/fastify-pino.mjs'],
    { env: { ...withoutLeftOut(process.env), PORT: String(port) } },
  )
  try {
    await waitForStatus(`http://127.0.0.1:${port}/healthz`, { child, timeoutMs: 30_000 })
    await sleep(idleS * 1000)
    return readRun(child.pid)
  } finally {
    await child.stop()
  }
}
