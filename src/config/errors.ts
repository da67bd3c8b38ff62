/**
 * A configuration problem found at start (or on reload). Its message is one line that names the
 * variable or field at fault and never carries a secret's value.
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError'
}

interface AjvLikeError {
  instancePath?: string
  message?: string
  params?: Record<string, unknown>
}

/** Turns whatever start-up threw into the one line the operator sees. */
export function describeStartupError(err: unknown): string {
  if (err instanceof ConfigError) return `invalid configuration: ${err.message}`
  const errors = (err as { errors?: AjvLikeError[] } | undefined)?.errors
  if (Array.isArray(errors) && errors.length > 0) {
    // @fastify/env (env-schema) failures: name each variable, never its value.
    const parts = errors.map((e) => {
      const missing = e.params?.missingProperty
      if (typeof missing === 'string') return `${missing} is required`
      const name = (e.instancePath ?? '').replace(/^\//, '') || 'environment'
      const allowed = e.params?.allowedValues
      const hint = Array.isArray(allowed) ? ` (${allowed.join(', ')})` : ''
      return `${name} ${e.message ?? 'is invalid'}${hint}`
    })
    return `invalid configuration: ${[...new Set(parts)].join('; ')}`
  }
  const message = err instanceof Error ? err.message : String(err)
  return `start-up failed: ${message.split('\n')[0]}`
}
