import type { Logger } from '../core/logger.js'

/** Past this, the upstream's clock and ours disagree enough to matter for token lifetimes. */
export const CLOCK_OFFSET_WARN_MS = 30_000

export interface ClockOffsets {
  /** What a credential's mint reports each upstream `Date` to: the upstream's time minus ours, in ms. */
  observer(credential: string, upstream: string): (offsetMs: number) => void
  /** The last offset seen on a credential's token answers; undefined before any answer carried a Date. */
  offset(credential: string): number | undefined
}

/**
 * The upstream clocks as their `Date` headers show them. A warning is logged once per upstream
 * origin when its offset first passes the limit, and again only after it has come back within it.
 */
export function createClockOffsets(log: Logger): ClockOffsets {
  const byCredential = new Map<string, number>()
  const warned = new Set<string>()
  return {
    observer: (credential, upstream) => (offsetMs) => {
      byCredential.set(credential, offsetMs)
      if (Math.abs(offsetMs) <= CLOCK_OFFSET_WARN_MS) {
        warned.delete(upstream)
        return
      }
      if (warned.has(upstream)) return
      warned.add(upstream)
      log.warn(
        { upstream, credential, clock_offset_ms: offsetMs },
        'upstream clock differs from the local clock by more than 30 s: token lifetimes are counted by the local clock',
      )
    },
    offset: (credential) => byCredential.get(credential),
  }
}

/**
 * The upstream's time minus `now`, from an HTTP `Date` header; undefined when absent or unreadable.
 * The header has whole seconds, so offsets under a second or two are noise.
 */
export function dateOffset(value: string | string[] | undefined, now: number): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value
  if (raw === undefined || raw === '') return undefined
  const at = Date.parse(raw)
  return Number.isFinite(at) ? Math.round(at - now) : undefined
}
