import { failureBrakeMs } from '../core/backoff.js'
import {
  describeFailure,
  errorText,
  type FailureKind,
  type LastError,
  UpstreamError,
} from '../core/failure.js'
import type { Brake } from '../core/store.js'
import { BrakeInForce } from './coordinator.js'

/** What a credential's failed mints left behind: the brake on upstream calls and the last error. */
export interface Failing {
  /** Consecutive failed mints of this replica; a brake joined from the fleet does not count. */
  readonly count: number
  /** No upstream call for this credential before this moment (epoch ms). */
  readonly until: number
  readonly kind: FailureKind
  readonly lastError: LastError
}

export const asUpstreamError = (err: unknown): UpstreamError =>
  err instanceof UpstreamError ? err : new UpstreamError('unavailable', `mint failed: ${errorText(err)}`)

/** The rest after a failed mint: how long nobody (here or, through the store, in the fleet) retries. */
export function brakeAfter(err: unknown, previous: Failing | undefined, now: number): Brake {
  const failure = asUpstreamError(err)
  const ms = failureBrakeMs(failure.kind, (previous?.count ?? 0) + 1, failure.retryAfterMs)
  return { kind: failure.kind, until: now + ms }
}

/** The failing state after `err` ended a mint. */
export function afterFailure(err: unknown, previous: Failing | undefined, now: number): Failing {
  if (err instanceof BrakeInForce) {
    // Another replica just failed: rest with the fleet, without counting it as our own failure.
    return {
      count: previous?.count ?? 0,
      until: Math.max(previous?.until ?? 0, err.brake.until),
      kind: err.brake.kind,
      lastError: { kind: err.brake.kind, message: err.message, at: now },
    }
  }
  const failure = asUpstreamError(err)
  const brake = brakeAfter(failure, previous, now)
  return {
    count: (previous?.count ?? 0) + 1,
    until: brake.until,
    kind: brake.kind,
    lastError: { kind: brake.kind, message: describeFailure(failure), at: now },
  }
}
