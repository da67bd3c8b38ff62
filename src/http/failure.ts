import type { CredentialType } from '../core/credential.js'
import type { FailureKind, LastError, MintFailed } from '../core/failure.js'

/** How callers read the upstreams' names: the broker's vendor is named at this edge only. */
const UPSTREAM_NAMES: Readonly<Record<CredentialType, string>> = {
  ims: 'Adobe IMS',
  eqp: 'Adobe Commerce Marketplace (EQP)',
}

/** The error code a failure kind is answered with (the catalogue in errors.ts). */
export const FAILURE_CODES = {
  rejected: 'UPSTREAM_REJECTED',
  unavailable: 'UPSTREAM_UNAVAILABLE',
} as const satisfies Record<FailureKind, string>

/** A credential's last error as /readyz and /v1/credentials show it. */
export const lastErrorBody = (type: CredentialType, e: LastError | undefined) =>
  e === undefined
    ? null
    : {
        code: FAILURE_CODES[e.kind],
        message: `${UPSTREAM_NAMES[type]}: ${e.message}`,
        at: new Date(e.at).toISOString(),
      }

/** What a caller is told when no token could be had. */
export function mintFailedMessage(err: MintFailed): string {
  if (err.shuttingDown) return err.message
  return err.kind === 'rejected'
    ? `Adobe refused the secret of credential "${err.credential}"`
    : `Adobe is unavailable and no token meeting the request is held for credential "${err.credential}"`
}
