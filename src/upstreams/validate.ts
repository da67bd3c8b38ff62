import type { UpstreamError } from '../core/failure.js'
import type { Grant } from '../core/grant.js'
import { type HeaderField, MAX_EXPIRES_IN_S, unprintableField } from '../core/token.js'
import { malformed } from './http.js'

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
   * The grant read from this answer, once every field that goes verbatim into callers' headers is
   * visible ASCII (the rule the store applies on read-back: what one replica holds, all can read).
   */
  grant(grant: Grant, names: Record<HeaderField, string>): Grant {
    const unprintable = unprintableField(grant)
    if (unprintable) throw this.bad(`${names[unprintable]} has characters a header cannot carry`)
    return grant
  }

  /** Seconds, a JSON number (a numeric string is refused: upstream's contract says number). */
  expiresIn(field: string): number {
    const v = this.obj[field]
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > MAX_EXPIRES_IN_S) {
      throw this.bad(`${field} not a number in (0, ${MAX_EXPIRES_IN_S}]`)
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
