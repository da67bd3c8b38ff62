import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { encryptionKeys, parseEncryptionKey, parseOldKeys } from '../../src/config/encryption-keys.js'
import { ConfigError } from '../../src/config/errors.js'

const b64 = (k: Buffer) => k.toString('base64')
/** What `fn` threw, as the operator would read it. */
const thrown = (fn: () => unknown): Error => {
  try {
    fn()
  } catch (err) {
    return err as Error
  }
  throw new Error('did not throw')
}

describe('parseEncryptionKey', () => {
  it('accepts base64 of exactly 32 bytes', () => {
    const key = randomBytes(32)
    expect(parseEncryptionKey(b64(key)).equals(key)).toBe(true)
    expect(parseEncryptionKey(`${b64(key)}\n`).equals(key)).toBe(true)
  })

  it.each([
    ['31 bytes', b64(randomBytes(31))],
    ['33 bytes', b64(randomBytes(33))],
    ['not base64', 'not a key at all, but 44 characters long!!!'],
    ['empty', ''],
    ['base64url', Buffer.alloc(32, 0xfb).toString('base64url')],
  ])('refuses %s, without echoing the value', (_what, value) => {
    expect(thrown(() => parseEncryptionKey(value)).message).toBe(
      'must be the base64 encoding of exactly 32 bytes',
    )
  })
})

describe('parseOldKeys', () => {
  it('comma-separated, each checked, errors name a position and never a value', () => {
    const [old, other] = [Buffer.alloc(32, 0x11), Buffer.alloc(32, 0x33)]
    expect(parseOldKeys(` ${b64(old)} ,${b64(other)}`)).toEqual([old, other])
    const message = thrown(() => parseOldKeys(`${b64(old)},short-CANARY-key`)).message
    expect(message).toBe('key 2: must be the base64 encoding of exactly 32 bytes')
    expect(message).not.toContain('CANARY')
  })
})

describe('encryptionKeys', () => {
  const [current, old] = [randomBytes(32), randomBytes(32)]

  it('decodes the current key and the old ones; none without TOKEN_ENCRYPTION_KEY', () => {
    expect(encryptionKeys({})).toBeUndefined()
    expect(encryptionKeys({ TOKEN_ENCRYPTION_KEY: b64(current) })).toEqual({ current, old: [] })
    expect(
      encryptionKeys({ TOKEN_ENCRYPTION_KEY: b64(current), TOKEN_ENCRYPTION_OLD_KEYS: b64(old) }),
    ).toEqual({ current, old: [old] })
  })

  it.each([
    [{ TOKEN_ENCRYPTION_KEY: 'CANARY-not-a-key' }, 'TOKEN_ENCRYPTION_KEY must be the base64'],
    [
      { TOKEN_ENCRYPTION_KEY: b64(current), TOKEN_ENCRYPTION_OLD_KEYS: 'CANARY-not-a-key' },
      'TOKEN_ENCRYPTION_OLD_KEYS key 1: must be the base64',
    ],
    [{ TOKEN_ENCRYPTION_OLD_KEYS: b64(old) }, 'TOKEN_ENCRYPTION_OLD_KEYS needs TOKEN_ENCRYPTION_KEY'],
  ])('refuses %o as a configuration error naming the variable, never the value', (env, start) => {
    const err = thrown(() => encryptionKeys(env))
    expect(err).toBeInstanceOf(ConfigError)
    expect(err.message.startsWith(start), err.message).toBe(true)
    expect(err.message).not.toContain('CANARY')
    expect(err.message).not.toContain(b64(old))
  })
})
