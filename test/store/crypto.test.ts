import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { createCipher, createKeyring, keyIdOf } from '../../src/store/crypto.js'

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
})
