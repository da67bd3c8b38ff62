import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto'

/** Encrypts token values at rest. The AAD binds a value to the Redis key it was written under. */
export interface Cipher {
  seal(plaintext: string, aad: string): string
  /** Throws when the value was tampered with, moved to another key, or sealed with another key. */
  open(sealed: string, aad: string): string
}

const VERSION = 'v1.'
const NONCE_BYTES = 12 // 96-bit nonce, the size GCM is designed for
const TAG_BYTES = 16

/** AES-256-GCM; output `v1.` + base64(nonce | ciphertext | tag). A fresh random nonce per value. */
export function createCipher(key: Buffer): Cipher {
  if (key.length !== 32) throw new Error('encryption key must be exactly 32 bytes')
  // Our own copy, so a caller zeroing or reusing its buffer cannot change our key.
  const k = Buffer.from(key)
  return {
    seal(plaintext, aad) {
      const nonce = randomBytes(NONCE_BYTES)
      const c = createCipheriv('aes-256-gcm', k, nonce, { authTagLength: TAG_BYTES })
      c.setAAD(Buffer.from(aad, 'utf8'))
      const body = Buffer.concat([c.update(plaintext, 'utf8'), c.final()])
      return VERSION + Buffer.concat([nonce, body, c.getAuthTag()]).toString('base64')
    },
    open(sealed, aad) {
      if (!sealed.startsWith(VERSION)) throw new Error('unknown sealed format')
      const raw = Buffer.from(sealed.slice(VERSION.length), 'base64')
      if (raw.length < NONCE_BYTES + TAG_BYTES) throw new Error('sealed value too short')
      const d = createDecipheriv('aes-256-gcm', k, raw.subarray(0, NONCE_BYTES), { authTagLength: TAG_BYTES })
      d.setAAD(Buffer.from(aad, 'utf8'))
      d.setAuthTag(raw.subarray(raw.length - TAG_BYTES))
      // final() throws when the tag does not verify (tamper, wrong key or wrong AAD).
      const out = Buffer.concat([d.update(raw.subarray(NONCE_BYTES, raw.length - TAG_BYTES)), d.final()])
      return out.toString('utf8')
    },
  }
}

/** What opening a sealed value found: the text, and whether the current key sealed it. */
export interface Opened {
  plaintext: string
  /** The id of the key that opened it. */
  keyId: string
  /** False when an old key opened it: the value is due to be re-sealed with the current key. */
  current: boolean
}

/**
 * The current key, which seals, and old keys (TOKEN_ENCRYPTION_OLD_KEYS), which only open: a rolling
 * key rotation. Values keep today's sealed format; the record they are stored in carries the key id.
 */
export interface Keyring {
  /** The id of the current key, stored beside every value it seals. */
  readonly keyId: string
  seal(plaintext: string, aad: string): string
  /**
   * Opens with the key `keyId` names first (a hint: a record written by an earlier release has
   * none), then with every other key. Throws when no configured key opens it.
   */
  open(sealed: string, aad: string, keyId?: string): Opened
}

/** A short public name of a key: a digest that reveals nothing of it. */
export const keyIdOf = (key: Buffer): string =>
  createHash('sha256').update('token-broker key id\0').update(key).digest('base64url').slice(0, 8)

export function createKeyring(current: Buffer, old: readonly Buffer[] = []): Keyring {
  const keys = [current, ...old].map((key) => ({ id: keyIdOf(key), cipher: createCipher(key) }))
  // The same key listed twice (current and old) is one key.
  const ring = keys.filter((k, i) => keys.findIndex((o) => o.id === k.id) === i)
  const first = ring[0]!
  return {
    keyId: first.id,
    seal: (plaintext, aad) => first.cipher.seal(plaintext, aad),
    open(sealed, aad, keyId) {
      const hinted = ring.find((k) => k.id === keyId)
      for (const k of hinted ? [hinted, ...ring.filter((o) => o !== hinted)] : ring) {
        try {
          return { plaintext: k.cipher.open(sealed, aad), keyId: k.id, current: k === first }
        } catch {
          // Not this key; try the next.
        }
      }
      throw new Error('no configured key opens the value')
    },
  }
}

/**
 * The key that authenticates the store's plain records (the failure brake), derived from the
 * encryption key so that one secret does both jobs without reusing the same bytes for two
 * algorithms. The store derives one per key of its keyring: it signs with the current key's and
 * accepts any of them, so replicas mid-rotation still obey each other's brakes.
 */
export function recordAuthKey(encryptionKey: Buffer): Buffer {
  return Buffer.from(
    hkdfSync('sha256', encryptionKey, Buffer.alloc(0), 'token-broker record authentication v1', 32),
  )
}
