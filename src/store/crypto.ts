import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'

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
