import { createHmac } from 'node:crypto'
import { recordAuthKey } from '../../src/store/crypto.js'

/** Where releases before hash-tagged key names kept a credential's brake. */
export const legacyBrakeKey = (prefix: string, id: string): string => `${prefix}brake:${id}`

/**
 * A brake (`kind:until`) as those releases signed it with an encryption key: a tag appended, the
 * HMAC of the key name it is stored under and the brake. Spelled out here rather than taken from the
 * store, so that the store cannot drift from what is already in Redis unnoticed.
 */
export function signedBrake(encryptionKey: Buffer, redisKey: string, brake: string): string {
  const tag = createHmac('sha256', recordAuthKey(encryptionKey)).update(`${redisKey}\n${brake}`).digest('hex')
  return `${brake}:${tag.slice(0, 32)}`
}
