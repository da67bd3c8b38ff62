import type { FailureKind } from './failure.js'

/** Retry delays inside one mint: exponential with full jitter, so replicas and credentials spread out. */
export function fullJitter(attempt: number, random: () => number, baseMs = 250, capMs = 4000): number {
  return Math.floor(random() * Math.min(capMs, baseMs * 2 ** attempt))
}

export const REJECTED_BRAKE_MS = 30_000
const TRANSIENT_BRAKE_CAP_MS = 60_000
/** The longest rest the broker ever sets; a longer brake read from the store is capped to it. */
export const MAX_BRAKE_MS = 10 * 60_000
/** The longest Retry-After the broker honours: upstream asking for more gets this. */
export const MAX_RETRY_AFTER_MS = MAX_BRAKE_MS

/**
 * How long a credential rests after a failed mint before anything (caller or timer) may try
 * upstream again. Rejected secrets wait 30 s; transient failures 1 s, 2 s, 4 s … up to 60 s, or
 * longer when upstream asked for it with Retry-After.
 */
export function failureBrakeMs(
  kind: FailureKind,
  consecutiveFailures: number,
  retryAfterMs?: number,
): number {
  if (kind === 'rejected') return REJECTED_BRAKE_MS
  const exponential = Math.min(TRANSIENT_BRAKE_CAP_MS, 1000 * 2 ** Math.max(0, consecutiveFailures - 1))
  return Math.max(exponential, Math.min(retryAfterMs ?? 0, MAX_RETRY_AFTER_MS))
}
