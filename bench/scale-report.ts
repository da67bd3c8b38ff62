import { type Target, table } from './report.js'
import { maxInFlight, RSS_EVERY_MS, type ScaleResult } from './scale.js'

/** What the fleet-scale phase is judged by; undefined (SKIP) when the phase did not run. */
const START_TARGET_MS = 2000
const QUIET_TARGET_PER_S = 0.1
/** The memory each replica requests in deploy/kubernetes/deployment.yaml (128Mi; the bench's MB are MiB). */
const RSS_TARGET_MB = 128
/**
 * An even spread over the whole refresh window puts a tenth of a cycle's refreshes in each tenth of
 * it; the schedule spreads over part of the window, and a sample of one cycle is noisy. A quarter
 * still tells spread refreshes from refreshes due together (nearly all in one tenth).
 */
const SPREAD_TARGET = 0.25

const pct = (x: number) => `${(x * 100).toFixed(0)} %`
type Cycle = ScaleResult['mints']['cycles'][number]
const share = (c: Cycle) => c.maxInTenthOfWindow / Math.max(1, c.mints)
const startShare = (c: Cycle) => c.startsMaxInTenthOfWindow / Math.max(1, c.starts)
const skipped = 'scale phase not run'

export function scaleTargets(r: ScaleResult | undefined): Target[] {
  const size = r ? `${r.replicas} replicas x ${r.credentials} credentials` : ''
  const inFlight = r ? Math.max(maxInFlight(r.coldStart.peers), maxInFlight(r.upstream.peers)) : 0
  const quiet = r ? Math.max(...r.redis.perReplica.map((x) => x.quietPerS)) : Number.NaN
  const rss = r ? Math.max(...Object.values(r.idle.rssMb)) : Number.NaN
  // The first cycle is every credential coming due together; those after it, credentials minted together.
  const judged = r ? (r.mints.cycles.length > 1 ? r.mints.cycles.slice(1) : r.mints.cycles) : []
  const spread = Math.max(0, ...judged.map(share), ...judged.map(startShare))
  return [
    {
      name: `scale: 1.00 upstream mints per credential per refresh cycle${r ? ` (${size}, ${r.cycles} cycles)` : ''}`,
      pass: r ? r.mints.extra === 0 && r.mints.incomplete === 0 : undefined,
      detail: r
        ? `${r.mints.perCredentialPerCycle.toFixed(3)} (${r.mints.extra} extra, ${r.mints.incomplete} credentials short of ${r.cycles} cycles); upstream requests in the window: simulator ${r.mints.requests}, /metrics mints_total summed over replicas ${r.mints.metricsRequests ?? '?'}`
        : skipped,
    },
    {
      name: `scale: <= ${r?.upstreamConcurrency ?? 'UPSTREAM_CONCURRENCY'} upstream token requests in flight per replica`,
      pass: r ? inFlight <= r.upstreamConcurrency && r.upstream.unattributed === 0 : undefined,
      detail: r
        ? `most per replica: cold start ${maxInFlight(r.coldStart.peers)}, refresh cycles ${maxInFlight(r.upstream.peers)}; at the simulator from all replicas: ${r.coldStart.maxInFlightAll} / ${r.upstream.maxInFlightAll}${r.upstream.unattributed ? `; ${r.upstream.unattributed} requests not put down to a replica` : ''}`
        : skipped,
    },
    {
      name: `scale: Redis commands per replica between refreshes near 0 (<= ${QUIET_TARGET_PER_S}/s)`,
      pass: r ? r.redis.quietS > 0 && quiet <= QUIET_TARGET_PER_S : undefined,
      detail: r
        ? r.redis.quietS === 0
          ? `no second of the ${r.redis.windowS} s window was free of refreshes; ${r.redis.perRefresh.toFixed(1)} commands per refresh (all replicas)`
          : `${r.redis.perReplica.map((x) => x.quietPerS.toFixed(3)).join(', ')} per s over ${r.redis.quietS} quiet s of ${r.redis.windowS}; ${r.redis.perRefresh.toFixed(1)} commands per refresh (all replicas)`
        : skipped,
    },
    {
      name: `scale: start to ready < ${START_TARGET_MS / 1000} s on ${r?.credentials ?? 'the'} stored tokens, 0 mints`,
      pass: r ? r.start.ms < START_TARGET_MS && r.start.ownMints === 0 && r.start.notOk === 0 : undefined,
      detail: r
        ? `${r.start.ms.toFixed(0)} ms, ${r.start.ownMints} mints by it (${r.start.fleetMints} by the fleet meanwhile), ${r.start.notOk} credentials not ok`
        : skipped,
    },
    {
      name: `scale: idle RSS < ${RSS_TARGET_MB} MB per replica with ${r?.credentials ?? 'all'} credentials (the Kubernetes memory request)`,
      pass: r ? rss < RSS_TARGET_MB : undefined,
      detail: r
        ? `${Object.values(r.idle.rssMb)
            .map((x) => x.toFixed(1))
            .join(', ')} MB`
        : skipped,
    },
    {
      name: `scale: refreshes of credentials minted together spread over the refresh window (<= ${pct(SPREAD_TARGET)} of a cycle in any tenth of it)`,
      pass: r ? spread <= SPREAD_TARGET : undefined,
      detail: r
        ? `share in the busiest tenth of the ${(r.lifetimeS * r.refreshMargin).toFixed(0)} s window per cycle (the first: every credential due at once), refresh starts ${r.mints.cycles.map((c) => pct(startShare(c))).join(', ')}, mints ${r.mints.cycles.map((c) => pct(share(c))).join(', ')}; spans of the starts ${r.mints.cycles.map((c) => `${c.startSpanS.toFixed(1)} s`).join(', ')}, of the mints ${r.mints.cycles.map((c) => `${c.spanS.toFixed(1)} s`).join(', ')}`
        : skipped,
    },
  ]
}

export function printScale(r: ScaleResult, out: (line: string) => void): void {
  out(
    `\nscale: ${r.replicas} replicas x ${r.credentials} credentials on one Redis, tokens of ${r.lifetimeS} s (REFRESH_MARGIN ${r.refreshMargin}: refresh period about ${(r.lifetimeS * (1 - r.refreshMargin)).toFixed(0)} s), upstream answers after ${r.latencyMs} ms, UPSTREAM_CONCURRENCY ${r.upstreamConcurrency}; ${r.cycles} refresh cycles over ${r.windowS.toFixed(0)} s after a cold start of ${(r.coldStart.ms / 1000).toFixed(1)} s`,
  )
  const quiet = new Map(r.redis.perReplica.map((x) => [x.replica, x]))
  out(
    table(
      [
        'replica',
        'in flight cold/cycles',
        'upstream reqs',
        'redis cmd/s',
        'between refreshes',
        'RSS MB',
        'heap used/total MB',
        'external MB',
      ],
      Object.keys(r.idle.rssMb).map((name) => {
        const q = quiet.get(name)
        return [
          name,
          `${r.coldStart.peers[name]?.maxInFlight ?? 0}/${r.upstream.peers[name]?.maxInFlight ?? 0}`,
          `${r.coldStart.peers[name]?.requests ?? 0}/${r.upstream.peers[name]?.requests ?? 0}`,
          q ? q.perS.toFixed(2) : '?',
          q ? q.quietPerS.toFixed(3) : '?',
          r.idle.rssMb[name]!.toFixed(1),
          `${r.idle.heapUsedMb[name]?.toFixed(1) ?? '?'}/${r.idle.heapTotalMb[name]?.toFixed(1) ?? '?'}`,
          r.idle.externalMb[name]?.toFixed(1) ?? '?',
        ]
      }),
    ),
  )
  const m = r.mints
  out(
    `mints per credential per cycle ${m.perCredentialPerCycle.toFixed(3)} (${m.extra} extra, ${m.incomplete} short); measured refresh period ${m.periodS.toFixed(1)} s; cold start ${r.coldStart.requests} requests for ${r.credentials} credentials (${r.coldStart.notOnce} not exactly once; ${r.aligned} tokens granted lifetimes that bring them due together in cycle 1)`,
  )
  out(
    table(
      [
        'cycle',
        'starts',
        'span s',
        'in 1/10 window',
        'mints',
        'span s',
        'in 1/10 period',
        'in 1/10 window',
        'redis cmds/mint',
      ],
      m.cycles.map((c) => [
        c.cycle,
        c.starts,
        c.startSpanS.toFixed(1),
        `${c.startsMaxInTenthOfWindow} (${pct(startShare(c))})`,
        c.mints,
        c.spanS.toFixed(1),
        `${c.maxInTenthOfCycle} (${pct(c.maxInTenthOfCycle / Math.max(1, c.mints))})`,
        `${c.maxInTenthOfWindow} (${pct(share(c))})`,
        c.commandsPerMint.toFixed(1),
      ]),
    ),
  )
  out(
    `starts: each credential's first lock attempt of the cycle (its refresh timer fired on some replica); "in 1/10": the most in any sliding tenth of the ${(r.lifetimeS * r.refreshMargin).toFixed(0)} s refresh window or of the ${m.periodS.toFixed(1)} s period; the first cycle is every credential coming due at once`,
  )
  out(
    `age of the replaced token at refresh from cycle 2 on, by tenth of its lifetime (0-10 % ... 90-100 %): ${m.ageHistogram.join(' ')}`,
  )
  const labels = (x: Record<string, number>) =>
    Object.entries(x)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ${v}`)
      .join(', ') || 'none'
  const rd = r.redis
  out(
    `redis, all replicas over ${rd.windowS} s: ${labels(rd.byLabel)}; inside scripts: ${labels(rd.scriptByLabel)}; ${rd.publishes} announcements (each a pub/sub message to every replica, not a command); ${rd.unattributed} commands of other clients`,
  )
  out(
    `redis between refreshes (${rd.quietS} s with no upstream request within 2 s): ${labels(rd.quietByLabel)}`,
  )
  out(
    `largest replica's RSS every ${RSS_EVERY_MS / 1000} s from the end of the cold start: ${r.rssTrendMb.map((x) => x.toFixed(0)).join(' ')} MB`,
  )
  out(
    `one more replica on the stored tokens: ready ${r.start.ms.toFixed(0)} ms after spawn, ${r.start.ownMints} mints by it, ${r.start.notOk} credentials not ok, RSS ${r.start.rssMb.toFixed(1)} MB`,
  )
  for (const [name, lines] of Object.entries(r.warnings)) {
    out(`  ${name} warned: ${lines.map((l) => l.slice(0, 200)).join(' | ')}`)
  }
}
