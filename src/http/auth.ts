import { hash, timingSafeEqual } from 'node:crypto'
import type { Client } from '../config/types.js'

const BEARER = /^Bearer +(\S+) *$/i

/**
 * Finds the client whose key the Authorization header carries. The presented key is hashed and
 * compared against every client's digest in constant time, without stopping at a match, so neither
 * the keys nor which client matched can be learnt from timing.
 */
export function authenticate(clients: readonly Client[], header: string | undefined): Client | undefined {
  if (header === undefined) return undefined
  const key = BEARER.exec(header)?.[1]
  if (key === undefined) return undefined
  // One-shot hashing: half the cost of createHash().update().digest() on this path.
  const digest = hash('sha256', key, 'buffer')
  let found: Client | undefined
  for (const client of clients) {
    if (timingSafeEqual(digest, client.keyDigest) && found === undefined) found = client
  }
  return found
}

export const mayUse = (client: Client, credentialId: string): boolean =>
  client.credentials === '*' || client.credentials.has(credentialId)
