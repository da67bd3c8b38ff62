import type { SimulatedRequest } from '../src/simulator/server.js'
import { median } from './hot-path.js'
import type { SeenCommand } from './redis-monitor.js'

/**
 * The fleet-scale phase's figures, worked out after the run from what the simulator logged (every
 * token request, when and from which replica) and what Redis ran (MONITOR). Pure functions.
 */

export interface CycleSpread {
  cycle: number
  mints: number
  /** First to last mint of the cycle, s. */
  spanS: number
  /** The most mints in any window of a tenth of the refresh period (sliding), and their share. */
  maxInTenthOfCycle: number
  /** The same in a tenth of the refresh window (REFRESH_MARGIN of the lifetime): an even spread gives 10 %. */
  maxInTenthOfWindow: number
}

export interface MintFigures {
  /** Mints in each credential's first `cycles` refresh cycles, over credentials x cycles. */
  perCredentialPerCycle: number
  /** Mints beyond one per credential per cycle (a second mint within half a period of the first). */
  extra: number
  /** Credentials that did not reach `cycles` refreshes in the time allowed. */
  incomplete: number
  /** Median time between a credential's successive refreshes, s. */
  periodS: number
  cycles: CycleSpread[]
  /** How old the replaced token was at each refresh, in tenths of its lifetime (bin 7: 70-80 %). */
  ageHistogram: number[]
}

/** The most of the sorted `times` within any window of `widthMs`. */
export function maxInWindow(times: number[], widthMs: number): number {
  let best = 0
  let from = 0
  for (let to = 0; to < times.length; to++) {
    while (times[to]! - times[from]! >= widthMs) from++
    best = Math.max(best, to - from + 1)
  }
  return best
}

/**
 * Groups each credential's mints after its first (cold-start) mint into refresh cycles: a mint more
 * than half a nominal refresh period after the start of the current cycle starts the next one, so a
 * second mint of the same refresh (two replicas minting) stays in its cycle and counts as extra.
 */
export function mintFigures(o: {
  log: readonly SimulatedRequest[]
  ids: readonly string[]
  /** Mints before this (epoch ms) are the cold start. */
  from: number
  until: number
  cycles: number
  lifetimeMs: number
  margin: number
}): MintFigures {
  const nominalMs = o.lifetimeMs * (1 - o.margin)
  const byId = new Map<string, number[]>(o.ids.map((id) => [id, []]))
  const coldAt = new Map<string, number>()
  for (const r of o.log) {
    if (r.at < o.from) coldAt.set(r.id, Math.max(coldAt.get(r.id) ?? 0, r.at))
    else if (r.at <= o.until) byId.get(r.id)?.push(r.at)
  }
  let counted = 0
  let expected = 0
  let incomplete = 0
  const starts: number[][] = Array.from({ length: o.cycles }, () => [])
  const cycleMints: number[][] = Array.from({ length: o.cycles }, () => [])
  const periods: number[] = []
  const ages: number[] = new Array(10).fill(0)
  for (const [id, times] of byId) {
    times.sort((a, b) => a - b)
    let previous = coldAt.get(id)
    let cycle = -1
    let start = Number.NEGATIVE_INFINITY
    for (const t of times) {
      if (t - start > nominalMs / 2) {
        cycle++
        if (cycle >= o.cycles) break
        if (previous !== undefined) {
          periods.push(t - previous)
          const tenth = Math.floor(((t - previous) / o.lifetimeMs) * 10)
          ages[Math.min(9, Math.max(0, tenth))]!++
        }
        start = t
        previous = t
        starts[cycle]!.push(t)
      }
      cycleMints[cycle]!.push(t)
      counted++
    }
    const done = Math.min(o.cycles, cycle + 1)
    if (done < o.cycles) incomplete++
    expected += done
  }
  const periodMs = median(periods)
  const windowMs = o.lifetimeMs * o.margin
  const cycles = cycleMints.map((times, k) => {
    const sorted = [...times].sort((a, b) => a - b)
    return {
      cycle: k + 1,
      mints: sorted.length,
      spanS: sorted.length ? (sorted.at(-1)! - sorted[0]!) / 1000 : 0,
      maxInTenthOfCycle: maxInWindow(sorted, (Number.isFinite(periodMs) ? periodMs : nominalMs) / 10),
      maxInTenthOfWindow: maxInWindow(sorted, windowMs / 10),
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

/** Activity of a refresh (lock, reads, write, the others' reads after the announcement) lies this close to its mint. */
const QUIET_PAD_MS = 2000

export function redisFigures(o: {
  commands: readonly SeenCommand[]
  replicas: readonly string[]
  mintTimes: readonly number[]
  refreshMints: number
  from: number
  until: number
}): RedisFigures {
  const seconds = Math.max(1, Math.floor((o.until - o.from) / 1000))
  const busy = new Array<boolean>(seconds).fill(false)
  for (const t of o.mintTimes) {
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
    perRefresh: o.refreshMints ? total / o.refreshMints : Number.NaN,
    publishes,
    byLabel,
    quietByLabel,
    scriptByLabel,
  }
}
