import { ConfigError } from './errors.js'

/** The keys the store seals and opens values with (a rolling rotation has old ones too). */
export interface EncryptionKeys {
  /** TOKEN_ENCRYPTION_KEY: seals every value, and opens them. */
  current: Buffer
  /** TOKEN_ENCRYPTION_OLD_KEYS: open values, never seal one. */
  old: Buffer[]
}

export interface EncryptionKeysEnv {
  TOKEN_ENCRYPTION_KEY?: string
  TOKEN_ENCRYPTION_OLD_KEYS?: string
}

/**
 * TOKEN_ENCRYPTION_KEY and TOKEN_ENCRYPTION_OLD_KEYS decoded, or undefined when no key is set. A bad
 * value is a ConfigError naming its variable, never the value (it is a secret).
 */
export function encryptionKeys(env: EncryptionKeysEnv): EncryptionKeys | undefined {
  if (env.TOKEN_ENCRYPTION_KEY === undefined) {
    // Old keys only open values: without a current key to seal with, they have nothing to do.
    if (env.TOKEN_ENCRYPTION_OLD_KEYS !== undefined) {
      throw new ConfigError('TOKEN_ENCRYPTION_OLD_KEYS needs TOKEN_ENCRYPTION_KEY (the key that seals)')
    }
    return undefined
  }
  return {
    current: named('TOKEN_ENCRYPTION_KEY', () => parseEncryptionKey(env.TOKEN_ENCRYPTION_KEY ?? '')),
    old:
      env.TOKEN_ENCRYPTION_OLD_KEYS === undefined
        ? []
        : named('TOKEN_ENCRYPTION_OLD_KEYS', () => parseOldKeys(env.TOKEN_ENCRYPTION_OLD_KEYS ?? '')),
  }
}

const named = <T>(variable: string, parse: () => T): T => {
  try {
    return parse()
  } catch (err) {
    throw new ConfigError(`${variable} ${(err as Error).message}`)
  }
}

/** Decodes TOKEN_ENCRYPTION_OLD_KEYS (comma-separated); messages name a position, never a value. */
export function parseOldKeys(list: string): Buffer[] {
  return list
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s, i) => {
      try {
        return parseEncryptionKey(s)
      } catch (err) {
        throw new Error(`key ${i + 1}: ${(err as Error).message}`)
      }
    })
}

/** Decodes TOKEN_ENCRYPTION_KEY. The message never contains the value (it is a secret). */
export function parseEncryptionKey(b64: string): Buffer {
  const s = b64.trim()
  // Buffer.from ignores junk characters, so check the alphabet and round-trip explicitly.
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(s)) throw new Error('must be the base64 encoding of exactly 32 bytes')
  const key = Buffer.from(s, 'base64')
  if (key.length !== 32 || key.toString('base64') !== s) {
    throw new Error('must be the base64 encoding of exactly 32 bytes')
  }
  return key
}
