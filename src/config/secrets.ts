import { readFile } from 'node:fs/promises'
import { ConfigError } from './errors.js'

/** `{"env": "NAME"}` or `{"file": "/path"}`: how a secret is named in the config file. */
export type SecretRef = { env: string } | { file: string }

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

export function parseSecretRef(value: unknown, field: string): SecretRef {
  if (typeof value === 'string' || typeof value === 'number') {
    // Never echo the value: it is probably the secret itself.
    throw new ConfigError(
      `${field} is a literal secret, which is refused: use {"env": "NAME"} or {"file": "/path"}`,
    )
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(`${field} must be {"env": "NAME"} or {"file": "/path"}`)
  }
  const keys = Object.keys(value)
  const ref = value as Record<string, unknown>
  if (keys.length === 1 && typeof ref.env === 'string' && ENV_NAME.test(ref.env)) return { env: ref.env }
  if (keys.length === 1 && typeof ref.file === 'string' && ref.file.length > 0) return { file: ref.file }
  throw new ConfigError(
    `${field} must be {"env": "NAME"} (a valid variable name) or {"file": "/path"}, and nothing else`,
  )
}

export type EnvSource = Readonly<Record<string, string | undefined>>

/** Reads the secret a reference names. Errors name the reference, never the secret. */
export async function resolveSecret(ref: SecretRef, field: string, env: EnvSource): Promise<string> {
  let value: string
  if ('env' in ref) {
    const found = env[ref.env]
    if (found === undefined) throw new ConfigError(`${field}: environment variable ${ref.env} is not set`)
    value = found
  } else {
    try {
      value = await readFile(ref.file, 'utf8')
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unreadable'
      throw new ConfigError(`${field}: cannot read file ${ref.file} (${code})`)
    }
    // Secret files usually end with a newline written by an editor or `echo`.
    value = value.replace(/\r?\n$/, '')
  }
  if (value.length === 0) throw new ConfigError(`${field}: the referenced secret is empty`)
  return value
}
