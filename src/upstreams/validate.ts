import type { UpstreamError } from '../core/failure.js'
import { isPrintableToken, MAX_EXPIRES_IN_S } from '../core/token.js'
import { malformed } from './http.js'

/** Longest lifetime the broker accepts from upstream (48 h): anything longer is a broken answer. */
export const MAX_EXPIRES_IN = MAX_EXPIRES_IN_S

/** Checks of a token answer; each returns the value or throws a `malformed` UpstreamError. */
export class AnswerReader {
  private readonly obj: Record<string, unknown>

  constructor(
    private readonly label: string,
    answer: unknown,
  ) {
    if (typeof answer !== 'object' || answer === null || Array.isArray(answer)) {
      throw this.bad('answer is not a JSON object')
    }
    this.obj = answer as Record<string, unknown>
  }

  /**
   * A token goes verbatim into callers' `Authorization` headers, so it must be visible ASCII:
   * no spaces, no control characters (header injection), nothing a header cannot carry.
   */
  token(field: string): string {
    const v = this.obj[field]
    if (typeof v !== 'string' || v === '') throw this.bad(`${field} missing or not a non-empty string`)
    if (!isPrintableToken(v)) throw this.bad(`${field} has characters a header cannot carry`)
    return v
  }

  /** Seconds, a JSON number (a numeric string is refused: upstream's contract says number). */
  expiresIn(field: string): number {
    const v = this.obj[field]
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > MAX_EXPIRES_IN) {
      throw this.bad(`${field} not a number in (0, ${MAX_EXPIRES_IN}]`)
    }
    return v
  }

  requiredString(field: string): string {
    const v = this.obj[field]
    if (typeof v !== 'string' || v === '') throw this.bad(`${field} missing or not a non-empty string`)
    return v
  }

  optionalString(field: string): string | undefined {
    const v = this.obj[field]
    if (v === undefined) return undefined
    if (typeof v !== 'string') throw this.bad(`${field} not a string`)
    return v
  }

  private bad(why: string): UpstreamError {
    return malformed(this.label, why)
  }
}
