/** Node/undici error codes are fixed identifiers; anything else is not trusted into a message. */
export function transportCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null || !('code' in err)) return undefined
  const code = err.code
  return typeof code === 'string' && /^[A-Z][A-Z0-9_]{0,63}$/.test(code) ? code : undefined
}

/** The egress proxy could not be reached or would not open a tunnel. The message names it by host:port only. */
export class EgressProxyError extends Error {
  override readonly name = 'EgressProxyError'
  readonly code = 'EGRESS_PROXY'
  constructor(
    readonly proxy: string,
    readonly detail: string | undefined,
  ) {
    // `detail`: an error code, or `HTTP <status>` when the proxy answered CONNECT with other than 200.
    const how =
      detail === 'ECONNREFUSED'
        ? 'refused the connection'
        : detail?.startsWith('HTTP ')
          ? 'refused the tunnel'
          : 'unreachable'
    super(`egress proxy ${proxy} ${how}${detail === undefined ? '' : ` (${detail})`}`)
  }
}

/** TLS verification failures: the upstream's certificate does not chain to a trusted CA or name. */
const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
])

/** The verification code when `err` (or what it wraps) is an untrusted-certificate failure. */
export function untrustedCertificate(err: unknown): string | undefined {
  for (let e = err, depth = 0; e !== undefined && e !== null && depth < 3; depth++) {
    const code = transportCode(e)
    if (code !== undefined && UNTRUSTED.has(code)) return code
    e = (e as { cause?: unknown }).cause
  }
  return undefined
}
