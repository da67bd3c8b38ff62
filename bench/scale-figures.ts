import type { SimulatedRequest } from '../src/simulator/server.js'
import { median } from './hot-path.js'
import type { SeenCommand } from './redis-monitor.js'

/**
 * The fleet-scale phase's figures, worked out after the run from what the simulator logged (every
 * token request, when and from which replica) and what Redis ran (MONITOR). Pure functions.
 */

export interface CycleFigures {
  cycle: number
  mints: number
  /** First to last mint of the cycle, s. */
  spanS: number
  /** The most mints in any window of a tenth of the refresh period (sliding). */
  maxInTenthOfCycle: number
  /** The same in a tenth of the refresh window (REFRESH_MARGIN of the lifetime): an even spread gives 10 %. */
  maxInTenthOfWindow: number
  /**
   * Refresh starts: each credential's first lock attempt of the cycle (the first replica whose
   * refresh timer fired), so the schedule's own spread, before the upstream limiter queues the mints.
   */
  starts: number
  startSpanS: number
  startsMaxInTenthOfWindow: number
  /** Client commands of all replicas from the cycle's first refresh start to QUIET_PAD_MS after its last mint, per mint. */
  commandsPerMint: number
}

export interface MintFigures {
  /** Mints in each credential's first `cycles` refresh cycles, over credentials x cycles. */
  perCredentialPerCycle: number
  /** Mints beyond one per credential per cycle (a second mint within half a period of the first). */
  extra: number
  /** Credentials that did not reach `cycles` refreshes in the time allowed. */
  incomplete: number
  /** Median time between a credential's successive refreshes, s (from the second cycle on). */
  periodS: number
  cycles: CycleFigures[]
  /**
   * How old the replaced token was at each refresh from the second cycle on (tokens of `lifetimeMs`),
   * in tenths of its lifetime: bin 7 is 70-80 %.
   */
  ageHistogram: number[]
}

/** Activity of a refresh (lock, reads, write, the others' reads after the announcement) lies this close to its mint. */
const QUIET_PAD_MS = 2000

/** The most of the sorted `times` within any window of `widthMs`. */
export function maxInWindow(times: readonly number[], widthMs: number): number {
  let best = 0
  let from = 0
  for (let to = 0; to < times.length; to++) {
    while (times[to]! - times[from]! >= widthMs) from++
    best = Math.max(best, to - from + 1)
  }
  return best
}

/**
 * Each key's times grouped into at most `limit` cycles: a time more than `gapMs` after the first of
 * the current cycle starts the next one. So a second mint of the same refresh (two replicas
 * minting), or a replica retrying the lock, stays in its cycle.
 */
export function cyclesOf(times: readonly number[], gapMs: number, limit: number): number[][] {
  const out: number[][] = []
  for (const t of [...times].sort((a, b) => a - b)) {
    const current = out.at(-1)
    if (current && t - current[0]! <= gapMs) current.push(t)
    else if (out.length < limit) out.push([t])
    else break
  }
  return out
}

const byKey = <T>(items: readonly T[], key: (x: T) => string | undefined, at: (x: T) => number) => {
  const m = new Map<string, number[]>()
  for (const x of items) {
    const k = key(x)
    if (k === undefined) continue
    const list = m.get(k)
    if (list) list.push(at(x))
    else m.set(k, [at(x)])
  }
  return m
}

export interface FigureInput {
  /** The simulator's log: the cold start's requests and the window's. */
  log: readonly SimulatedRequest[]
  /** Every Redis command in the window (empty while the run is still being watched). */
  commands: readonly SeenCommand[]
  /** The upstream ids (what the simulator counts by). */
  ids: readonly string[]
  /** The end of the cold start (epoch ms): the window's start. */
  from: number
  until: number
  cycles: number
  lifetimeMs: number
  margin: number
}

export function mintFigures(o: FigureInput): MintFigures {
  const nominalMs = o.lifetimeMs * (1 - o.margin)
  const gapMs = nominalMs / 2
  const windowMs = o.lifetimeMs * o.margin
  const inWindow = o.log.filter((r) => r.at >= o.from && r.at <= o.until)
  const mintsById = byKey(
    inWindow,
    (r) => r.id,
    (r) => r.at,
  )
  const coldAt = new Map<string, number>()
  for (const r of o.log) if (r.at < o.from) coldAt.set(r.id, Math.max(coldAt.get(r.id) ?? 0, r.at))

  let counted = 0
  let expected = 0
  let incomplete = 0
  const cycleMints: number[][] = Array.from({ length: o.cycles }, () => [])
  const periods: number[] = []
  const ages: number[] = new Array(10).fill(0)
  for (const id of o.ids) {
    const cycles = cyclesOf(mintsById.get(id) ?? [], gapMs, o.cycles)
    let previous = coldAt.get(id)
    for (const [k, times] of cycles.entries()) {
      cycleMints[k]!.push(...times)
      counted += times.length
      // The first cycle replaces the cold start's tokens, whose lifetimes were not lifetimeMs.
      if (previous !== undefined && k > 0) {
        periods.push(times[0]! - previous)
        ages[Math.min(9, Math.floor(((times[0]! - previous) / o.lifetimeMs) * 10))]!++
      }
      previous = times[0]
    }
    if (cycles.length < o.cycles) incomplete++
    expected += cycles.length
  }
  const periodMs = periods.length ? median(periods) : nominalMs

  // Refresh starts: each credential's first lock attempt per cycle, from MONITOR.
  const locks = byKey(
    o.commands.filter((c) => !c.lua && c.replica !== undefined && c.label === 'set lock'),
    (c) => c.credential,
    (c) => c.at,
  )
  const cycleStarts: number[][] = Array.from({ length: o.cycles }, () => [])
  for (const times of locks.values()) {
    for (const [k, cycle] of cyclesOf(times, gapMs, o.cycles).entries()) cycleStarts[k]!.push(cycle[0]!)
  }
  const clientCommands = o.commands.filter((c) => !c.lua && c.replica !== undefined).map((c) => c.at)

  const cycles = cycleMints.map((mints, k) => {
    const sorted = [...mints].sort((a, b) => a - b)
    const starts = [...cycleStarts[k]!].sort((a, b) => a - b)
    const first = Math.min(sorted[0] ?? Number.POSITIVE_INFINITY, starts[0] ?? Number.POSITIVE_INFINITY)
    const last = (sorted.at(-1) ?? first) + QUIET_PAD_MS
    const commands = clientCommands.filter((t) => t >= first && t <= last).length
    return {
      cycle: k + 1,
      mints: sorted.length,
      spanS: sorted.length ? (sorted.at(-1)! - sorted[0]!) / 1000 : 0,
      maxInTenthOfCycle: maxInWindow(sorted, periodMs / 10),
      maxInTenthOfWindow: maxInWindow(sorted, windowMs / 10),
      starts: starts.length,
      startSpanS: starts.length ? (starts.at(-1)! - starts[0]!) / 1000 : 0,
      startsMaxInTenthOfWindow: maxInWindow(starts, windowMs / 10),
      commandsPerMint: sorted.length ? commands / sorted.length : Number.NaN,
    }
  })
  return {
    perCredentialPerCycle: expected === 0 ? Number.NaN : counted / expected,
    extra: counted - expected,
    incomplete,
    periodS: periodMs / 1000,
    cycles,
    ageHistogram: ages,
  }
}

export interface RedisFigures {
  windowS: number
  /** Seconds of the window with no upstream token request within QUIET_PAD_MS: between refreshes. */
  quietS: number
  perReplica: { replica: string; commands: number; perS: number; quiet: number; quietPerS: number }[]
  /** Client commands not put down to a replica (another client, or a port not found). */
  unattributed: number
  /** Client commands of all replicas per refresh mint in the window. */
  perRefresh: number
  /** PUBLISH run by the write script: each is one message to every replica's subscription. */
  publishes: number
  /** Client commands by label, all replicas, over the window and over its quiet seconds. */
  byLabel: Record<string, number>
  quietByLabel: Record<string, number>
  /** Commands run inside scripts, by label (not counted above). */
  scriptByLabel: Record<string, number>
}

export function redisFigures(o: {
  commands: readonly SeenCommand[]
  replicas: readonly string[]
  mintTimes: readonly number[]
  from: number
  until: number
}): RedisFigures {
  const seconds = Math.max(1, Math.floor((o.until - o.from) / 1000))
  const busy = new Array<boolean>(seconds).fill(false)
  let refreshMints = 0
  for (const t of o.mintTimes) {
    if (t < o.from || t > o.until) continue
    refreshMints++
    const first = Math.floor((t - QUIET_PAD_MS - o.from) / 1000)
    const last = Math.floor((t + QUIET_PAD_MS - o.from) / 1000)
    for (let s = Math.max(0, first); s <= Math.min(seconds - 1, last); s++) busy[s] = true
  }
  const quietS = busy.filter((b) => !b).length
  const counts = new Map(o.replicas.map((r) => [r, { commands: 0, quiet: 0 }]))
  const byLabel: Record<string, number> = {}
  const quietByLabel: Record<string, number> = {}
  const scriptByLabel: Record<string, number> = {}
  let unattributed = 0
  let publishes = 0
  let total = 0
  for (const c of o.commands) {
    const s = Math.floor((c.at - o.from) / 1000)
    if (s < 0 || s >= seconds) continue
    if (c.lua) {
      scriptByLabel[c.label] = (scriptByLabel[c.label] ?? 0) + 1
      if (c.label.startsWith('publish')) publishes++
      continue
    }
    const mine = c.replica === undefined ? undefined : counts.get(c.replica)
    if (!mine) {
      unattributed++
      continue
    }
    total++
    mine.commands++
    byLabel[c.label] = (byLabel[c.label] ?? 0) + 1
    if (!busy[s]) {
      mine.quiet++
      quietByLabel[c.label] = (quietByLabel[c.label] ?? 0) + 1
    }
  }
  return {
    windowS: seconds,
    quietS,
    perReplica: [...counts].map(([replica, c]) => ({
      replica,
      commands: c.commands,
      perS: c.commands / seconds,
      quiet: c.quiet,
      quietPerS: quietS ? c.quiet / quietS : Number.NaN,
    })),
    unattributed,
    perRefresh: refreshMints ? total / refreshMints : Number.NaN,
    publishes,
    byLabel,
    quietByLabel,
    scriptByLabel,
  }
}
