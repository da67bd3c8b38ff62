import { hash, timingSafeEqual } from 'node:crypto'
import type { Client } from '../core/credential.js'

const BEARER = /^Bearer +(\S+) *$/i

// The presented key's digest is written here rather than into a new Buffer per request: a Buffer
// made in C++ (hash(..., 'buffer')) costs an ArrayBuffer, a malloc and a finaliser, more than the
// hash itself (docs/performance.md). authenticate() is synchronous, so one scratch buffer is never
// shared.
const scratch = Buffer.alloc(32)

/**
 * Finds the client whose key the Authorization header carries (any of its keys, for rotation). The
 * presented key is hashed and compared against every key of every client in constant time, without
 * stopping at a match, so neither the keys nor which client or key matched can be learnt from timing.
 */
export function authenticate(clients: readonly Client[], header: string | undefined): Client | undefined {
  if (header === undefined) return undefined
  const key = BEARER.exec(header)?.[1]
  if (key === undefined) return undefined
  // 'binary' (latin1) maps each digest byte to one char and back, so the copy into scratch is exact.
  scratch.write(hash('sha256', key, 'binary'), 0, 32, 'binary')
  let found: Client | undefined
  for (const client of clients) {
    for (const digest of client.keyDigests) {
      if (timingSafeEqual(scratch, digest) && found === undefined) found = client
    }
  }
  return found
}

export const mayUse = (client: Client, credentialId: string): boolean =>
  client.credentials === '*' || client.credentials.has(credentialId)
