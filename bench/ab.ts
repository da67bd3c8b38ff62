import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { resolve } from 'node:path'
import { createSimulator } from '../src/simulator/server.js'
import { simulatorSecret } from './broker.js'
import { cleanupAll, installExitHandlers, onCleanup } from './cleanup.js'
import { benchConfig } from './config.js'
import { vmRssMb } from './growth.js'
import { type Ctx, contention, hotSetup, measure, median, startReadyBroker } from './hot-path.js'
import { hasErrors, type LoadResult } from './load.js'
import { findRedis } from './redis.js'

/**
 * A/B of two broker builds (or node flags) on the hot path, for checking a change before and after:
 *   cp -r dist /tmp/ab/before && ln -s "$PWD/node_modules" /tmp/ab/node_modules \
 *     && echo '{"type":"module"}' > /tmp/ab/package.json          # then change src and rebuild
 *   BENCH_AB_A=/tmp/ab/before/server.js BENCH_AB_B=dist/server.js BENCH_ROUNDS=6 node --import tsx bench/ab.ts
 *   BENCH_AB_A_ARGS=--max-semi-space-size=16 node --import tsx bench/ab.ts    (same build, node flags)
 *   BENCH_AB_B_TRACING=1 node --import tsx bench/ab.ts    (same build, B exports spans to a local sink)
 * Same load as the hot-path phase; one broker at a time, order alternating A B / B A per round.
 * Besides req/s it reports the server's CPU time per request, which a busy 2-core machine disturbs less.
 */
type Side = 'A' | 'B'
const args = (name: string) => (process.env[name] ?? '').split(/\s+/).filter(Boolean)

async function main(): Promise<void> {
  installExitHandlers()
  const cfg = benchConfig()
  const entryA = resolve(process.env.BENCH_AB_A ?? 'dist/server.js')
  const entries: Record<Side, string> = { A: entryA, B: resolve(process.env.BENCH_AB_B ?? entryA) }
  const nodeArgs: Record<Side, string[]> = { A: args('BENCH_AB_A_ARGS'), B: args('BENCH_AB_B_ARGS') }
  const tracing: Record<Side, boolean> = {
    A: process.env.BENCH_AB_A_TRACING === '1',
    B: process.env.BENCH_AB_B_TRACING === '1',
  }
  if (entries.A === entries.B && nodeArgs.A.join(' ') === nodeArgs.B.join(' ') && tracing.A === tracing.B) {
    throw new Error(
      'A and B are the same: set BENCH_AB_B (a server.js), BENCH_AB_A_ARGS / BENCH_AB_B_ARGS or BENCH_AB_B_TRACING=1',
    )
  }
  const redis = await findRedis()
  const sim = createSimulator({ secrets: simulatorSecret })
  const simUrl = await sim.listen(0, '127.0.0.1')
  onCleanup(() => sim.close())
  const out = (line: string) => process.stdout.write(`${line}\n`)
  const ctx: Ctx = { cfg, simUrl, redisUrl: redis.url, log: out }
  const collector = tracing.A || tracing.B ? await startSpanSink() : undefined
  const envOf = (side: Side) =>
    tracing[side] && collector ? { OTEL_EXPORTER_OTLP_ENDPOINT: collector } : undefined
  const { opts, configPath, path } = hotSetup(ctx)
  for (const side of ['A', 'B'] as const) {
    out(`${side} = ${[...nodeArgs[side], entries[side]].join(' ')}${tracing[side] ? ' (tracing on)' : ''}`)
  }
  out(`${cfg.rounds} rounds x ${cfg.durationS} s, ${cfg.connections} connections`)

  const results: Record<Side, LoadResult[]> = { A: [], B: [] }
  const rss: Record<Side, number[]> = { A: [], B: [] }
  for (let round = 1; round <= cfg.rounds; round++) {
    const order: Side[] = round % 2 ? ['A', 'B'] : ['B', 'A']
    for (const side of order) {
      const name = `broker ${side}`
      const b = await startReadyBroker(
        { ...opts, name, entry: entries[side], nodeArgs: nodeArgs[side], env: envOf(side) },
        configPath,
      )
      try {
        const r = await measure(cfg, b, path)
        results[side].push(r)
        rss[side].push(vmRssMb(b.pid))
        out(
          `  round ${round} ${side}: ${r.rps.toFixed(0)} req/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms  RSS ${rss[side].at(-1)!.toFixed(0)} MB${contention(r)}${hasErrors(r) ? '  ERRORS' : ''}`,
        )
      } finally {
        await b.stop()
      }
    }
  }
  const med = (xs: LoadResult[], f: (r: LoadResult) => number) => median(xs.map(f))
  const paired = (f: (r: LoadResult) => number) => results.B.map((r, i) => f(r) / f(results.A[i]!))
  const list = (xs: number[]) => xs.map((x) => x.toFixed(3)).join(', ')
  const us = (r: LoadResult) => r.serverUsPerReq ?? Number.NaN
  for (const side of ['A', 'B'] as const) {
    out(
      `${side}: ${med(results[side], (r) => r.rps).toFixed(0)} req/s, p99 ${med(results[side], (r) => r.p99).toFixed(2)} ms, ${med(results[side], us).toFixed(1)} µs CPU/req, RSS ${median(rss[side]).toFixed(0)} MB`,
    )
  }
  const rps = paired((r) => r.rps)
  const cpu = paired(us)
  out(`B/A req/s, median of paired rounds: ${median(rps).toFixed(3)} (${list(rps)})`)
  out(`B/A server CPU per request, median of paired rounds: ${median(cpu).toFixed(3)} (${list(cpu)})`)
}

/** An OTLP/HTTP collector that takes every export and drops it, for a broker with tracing on. */
async function startSpanSink(): Promise<string> {
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'))
  })
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  onCleanup(() => new Promise<void>((done) => server.close(() => done())))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

main().then(
  async () => {
    await cleanupAll()
    process.exit(0)
  },
  async (err: unknown) => {
    process.stderr.write(`\nab failed: ${(err as Error).stack ?? String(err)}\n`)
    await cleanupAll()
    process.exit(1)
  },
)
