import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import {
  createCipher,
  createKeyring,
  keyIdOf,
  parseEncryptionKey,
  parseOldKeys,
} from '../../src/store/crypto.js'

describe('AES-256-GCM cipher', () => {
  const key = randomBytes(32)
  const c = createCipher(key)

  it('round-trips, with a fresh nonce per value', () => {
    const a = c.seal('secret token', 'p:token:a')
    const b = c.seal('secret token', 'p:token:a')
    expect(a).toMatch(/^v1\./)
    expect(a).not.toEqual(b)
    expect(a).not.toContain('secret')
    expect(c.open(a, 'p:token:a')).toBe('secret token')
    expect(c.open(b, 'p:token:a')).toBe('secret token')
  })

  it('rejects another AAD (a value moved to another key)', () => {
    expect(() => c.open(c.seal('x', 'p:token:a'), 'p:token:b')).toThrow()
  })

  it('rejects a tampered value, a truncated one and another format', () => {
    const sealed = c.seal('secret token', 'k')
    const raw = Buffer.from(sealed.slice(3), 'base64')
    for (const i of [0, 12, raw.length - 1]) {
      const bad = Buffer.from(raw)
      bad[i] = (bad[i] ?? 0) ^ 1
      expect(() => c.open(`v1.${bad.toString('base64')}`, 'k')).toThrow()
    }
    expect(() => c.open('v1.AAAA', 'k')).toThrow()
    expect(() => c.open('{"accessToken":"x"}', 'k')).toThrow()
  })

  it('rejects a value sealed with another key', () => {
    expect(() => createCipher(randomBytes(32)).open(c.seal('x', 'k'), 'k')).toThrow()
  })

  it('refuses a key that is not 32 bytes', () => {
    expect(() => createCipher(randomBytes(16))).toThrow()
  })
})

describe('parseEncryptionKey', () => {
  it('accepts base64 of exactly 32 bytes', () => {
    const key = randomBytes(32)
    expect(parseEncryptionKey(key.toString('base64')).equals(key)).toBe(true)
    expect(parseEncryptionKey(`${key.toString('base64')}\n`).equals(key)).toBe(true)
  })

  it.each([
    ['31 bytes', randomBytes(31).toString('base64')],
    ['33 bytes', randomBytes(33).toString('base64')],
    ['not base64', 'not a key at all, but 44 characters long!!!'],
    ['empty', ''],
    ['base64url', Buffer.alloc(32, 0xfb).toString('base64url')],
  ])('refuses %s, without echoing the value', (_what, value) => {
    let message = ''
    try {
      parseEncryptionKey(value)
    } catch (err) {
      message = (err as Error).message
    }
    expect(message).toBe('must be the base64 encoding of exactly 32 bytes')
  })
})

describe('keyring (rolling key rotation)', () => {
  const current = Buffer.alloc(32, 0x22)
  const old = Buffer.alloc(32, 0x11)
  const other = Buffer.alloc(32, 0x33)

  it('seals with the current key only; opens with the current or an old key, saying which', () => {
    const ring = createKeyring(current, [old])
    const byCurrent = ring.seal('hello', 'aad')
    expect(ring.open(byCurrent, 'aad', ring.keyId)).toEqual({
      plaintext: 'hello',
      keyId: keyIdOf(current),
      current: true,
    })
    expect(createCipher(current).open(byCurrent, 'aad')).toBe('hello')
    const byOld = createCipher(old).seal('legacy', 'aad')
    // No key id (today's records), or a stale one: every key is tried.
    expect(ring.open(byOld, 'aad')).toEqual({ plaintext: 'legacy', keyId: keyIdOf(old), current: false })
    expect(ring.open(byOld, 'aad', keyIdOf(current)).current).toBe(false)
    expect(() => ring.open(createCipher(other).seal('x', 'aad'), 'aad')).toThrow('no configured key')
    expect(() => ring.open(byOld, 'another-aad')).toThrow()
  })

  it('key ids are short, stable and reveal nothing of the key', () => {
    expect(keyIdOf(current)).toMatch(/^[A-Za-z0-9_-]{8}$/)
    expect(keyIdOf(current)).toBe(keyIdOf(Buffer.from(current)))
    expect(keyIdOf(current)).not.toBe(keyIdOf(old))
  })

  it('TOKEN_ENCRYPTION_OLD_KEYS: comma-separated, each checked, errors name a position and never a value', () => {
    const b64 = (k: Buffer) => k.toString('base64')
    expect(parseOldKeys(` ${b64(old)} ,${b64(other)}`).map(keyIdOf)).toEqual([keyIdOf(old), keyIdOf(other)])
    const bad = 'short-CANARY-key'
    let message = ''
    try {
      parseOldKeys(`${b64(old)},${bad}`)
    } catch (err) {
      message = (err as Error).message
    }
    expect(message).toBe('key 2: must be the base64 encoding of exactly 32 bytes')
    expect(message).not.toContain('CANARY')
  })
})
