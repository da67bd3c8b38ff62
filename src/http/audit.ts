import type { FastifyRequest } from 'fastify'
import { clientOf, credentialOf } from './answers.js'

/** Why a caller was refused, as the `access.denied` audit line says it. */
export type DeniedReason = 'unauthenticated' | 'credential_not_allowed' | 'address_not_allowed'

/**
 * The `access.denied` audit line (warn). Client and credential are configured ids or null, never
 * what the caller sent: a key is never logged, and an unknown id could be anything.
 */
export function logDenied(request: FastifyRequest, reason: DeniedReason): void {
  request.log.warn(
    {
      event: 'access.denied',
      client: clientOf(request) || null,
      credential: credentialOf(request) || null,
      reason,
    },
    'access denied',
  )
}
