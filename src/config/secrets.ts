import { open } from 'node:fs/promises'
import { ConfigError } from './errors.js'
import type { SecretRef, SecretRefs } from './file-schema.js'

export type EnvSource = Readonly<Record<string, string | undefined>>

/** Secret files are small (a key, a password): a bigger one is a wrong path, not a secret. */
export const MAX_SECRET_FILE_BYTES = 64 * 1024

// C0, DEL and C1 controls: never part of a real secret, usually a stray newline or a paste accident.
const CONTROL = /\p{Cc}/u

/** One reference or a list, as the file allows, always as a list (first preferred). */
export const asList = (refs: SecretRefs): readonly SecretRef[] => (Array.isArray(refs) ? refs : [refs])

/** Reads every secret a field names, in order. `field` is the field's path, for error lines. */
export async function resolveSecrets(refs: SecretRefs, field: string, env: EnvSource): Promise<string[]> {
  if (!Array.isArray(refs)) return [await resolveSecret(refs, field, env)]
  const values: string[] = []
  for (const [i, ref] of refs.entries()) values.push(await resolveSecret(ref, `${field}[${i}]`, env))
  return values
}

/** Reads the secret a reference names. Errors name the reference, never the secret. */
export async function resolveSecret(ref: SecretRef, field: string, env: EnvSource): Promise<string> {
  let value: string
  if ('env' in ref) {
    const found = env[ref.env]
    // Empty counts as unset, as for every variable: both mean "no secret here".
    if (found === undefined || found === '')
      throw new ConfigError(`${field}: environment variable ${ref.env} is not set or is empty`)
    value = found
  } else {
    // Secret files usually end with a newline written by an editor or `echo`: drop that one.
    value = (await readSecretFile(ref.file, field)).replace(/\r?\n$/, '')
  }
  if (value.length === 0) throw new ConfigError(`${field}: the referenced secret is empty`)
  if (CONTROL.test(value)) {
    throw new ConfigError(
      `${field}: the referenced secret contains a control character (a line break, tab or the like), which is refused`,
    )
  }
  return value
}

/** Reads at most one byte past the limit, so a huge file or a device is refused without reading it. */
async function readSecretFile(path: string, field: string): Promise<string> {
  let handle: Awaited<ReturnType<typeof open>> | undefined
  try {
    handle = await open(path, 'r')
    const buffer = Buffer.alloc(MAX_SECRET_FILE_BYTES + 1)
    let length = 0
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null)
      if (bytesRead === 0) break
      length += bytesRead
    }
    if (length > MAX_SECRET_FILE_BYTES) {
      throw new ConfigError(`${field}: file ${path} is larger than 64 KiB, which is refused for a secret`)
    }
    return buffer.toString('utf8', 0, length)
  } catch (err) {
    if (err instanceof ConfigError) throw err
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable'
    throw new ConfigError(`${field}: cannot read file ${path} (${code})`)
  } finally {
    await handle?.close()
  }
}
