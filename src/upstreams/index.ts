import type { Credential } from '../core/credential.js'
import type { Mint } from '../core/grant.js'
import { createEqpMint } from './eqp.js'
import type { UpstreamDeps } from './http.js'
import { createImsMint } from './ims.js'

export type { UpstreamDeps } from './http.js'

/** The upstream attempt for a credential, by its type. */
export function createMint(cred: Credential, deps: UpstreamDeps): Mint {
  switch (cred.type) {
    case 'ims':
      return createImsMint(cred, deps)
    case 'eqp':
      return createEqpMint(cred, deps)
  }
}
