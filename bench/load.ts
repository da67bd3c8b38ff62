import { createHistogram } from 'node:perf_hooks'
import autocannon from 'autocannon'
import { type CpuUse, watchCpu } from './cpu.js'

export interface LoadOptions {
  /** Base URL, e.g. http://127.0.0.1:1234 */
  url: string
  /** One path, or several that each connection cycles through in order. */
  paths: string[]
  headers?: Record<string, string>
  connections?: number
  durationS: number
  /** Requests per second over all connections (paced run); unset = as fast as the server answers. */
  overallRate?: number
  /** The server's pid: its CPU is not counted as interference. */
  serverPid?: number
}

export interface LoadResult {
  /** Mean requests per second over the run (autocannon's per-second samples). */
  rps: number
  /** Latency in ms, from the exact per-response times (µs resolution). */
  p50: number
  p90: number
  p99: number
  p999: number
  max: number
  /** autocannon's own percentiles (integer ms histogram), for reference. */
  autocannonP50: number
  autocannonP99: number
  total: number
  ok2xx: number
  non2xx: number
  errors: number
  timeouts: number
  statusCodes: Record<string, number>
  durationS: number
  /** Cores used on average by other processes during the run (see cpu.ts); undefined off Linux. */
  foreignCores: number | undefined
  /** Cores used by the load generator (this process), the server, and others; undefined off Linux. */
  cpu: CpuUse | undefined
  /**
   * The server's CPU time (user + system) per answered request, in µs. On 2 cores the load generator
   * and the server share the machine, so req/s swings with how the kernel places them; this does not.
   */
  serverUsPerReq: number | undefined
}

/**
 * One autocannon run in this process (the server under test lives in another process). Latency is
 * recorded from every response at µs resolution, because autocannon's own histogram keeps whole
 * milliseconds, too coarse for a 5 ms target.
 */
export function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const hist = createHistogram({ lowest: 1, highest: 60_000_000, figures: 3 })
  const cpu = watchCpu(opts.serverPid)
  return new Promise((resolve, reject) => {
    const multi = opts.paths.length > 1
    const instance = autocannon(
      {
        url: multi ? opts.url : `${opts.url}${opts.paths[0]}`,
        connections: opts.connections ?? 64,
        pipelining: 1,
        duration: opts.durationS,
        headers: opts.headers,
        ...(multi ? { requests: opts.paths.map((path) => ({ method: 'GET' as const, path })) } : {}),
        ...(opts.overallRate ? { overallRate: opts.overallRate } : {}),
        timeout: 10,
      },
      (err, r) => {
        const use = cpu.stop()
        if (err) return reject(err)
        const ms = (p: number) => Number(hist.percentile(p)) / 1000
        const statusCodes: Record<string, number> = {}
        for (const [code, s] of Object.entries(r.statusCodeStats ?? {})) statusCodes[code] = s.count ?? 0
        resolve({
          rps: r.requests.average,
          p50: ms(50),
          p90: ms(90),
          p99: ms(99),
          p999: ms(99.9),
          max: Number(hist.max) / 1000,
          autocannonP50: r.latency.p50,
          autocannonP99: r.latency.p99,
          total: r.requests.total,
          ok2xx: r['2xx'],
          non2xx: r.non2xx,
          errors: r.errors,
          timeouts: r.timeouts,
          statusCodes,
          durationS: r.duration,
          foreignCores: use?.foreign,
          cpu: use,
          serverUsPerReq:
            use && r.requests.total > 0 ? (use.server * r.duration * 1e6) / r.requests.total : undefined,
        })
      },
    )
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      if (statusCode >= 200 && statusCode < 300) hist.record(Math.max(1, Math.round(responseTime * 1000)))
    })
  })
}

export const hasErrors = (r: LoadResult) => r.non2xx > 0 || r.errors > 0 || r.timeouts > 0
