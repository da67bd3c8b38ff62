import { type ConnectionOptions, connect } from 'node:tls'

/**
 * Redis answered but refused this client, as opposed to being unreachable: a wrong setting that
 * waiting will not cure.
 * - `credentials`: the data nodes refused the ACL user or password;
 * - `sentinel-credentials`: the Sentinels refused their password;
 * - `permissions`: the ACL user may not run a command the connection needs;
 * - `untrusted-certificate`: Redis's TLS certificate does not chain to a trusted CA (or has expired);
 * - `certificate-name`: the certificate does not name the host connected to.
 */
export interface Refusal {
  kind: 'credentials' | 'sentinel-credentials' | 'permissions' | 'untrusted-certificate' | 'certificate-name'
  /** What Redis or TLS said: never a password (neither says one). */
  detail: string
}

// Node's codes for a certificate that did not verify (OpenSSL's names).
const UNTRUSTED_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_REJECTED',
  'INVALID_CA',
])
// The same, when only the message survived (ioredis rewraps the Sentinels' errors as text).
const UNTRUSTED_TEXT =
  /self[- ]signed certificate|unable to verify the first certificate|unable to get (local )?issuer certificate|certificate has expired|certificate is not yet valid/i
const NAME_TEXT = /Hostname\/IP does not match certificate's altnames/
const AUTH_TEXT = /^(WRONGPASS|NOAUTH)\b|^ERR invalid (username-)?password/
const SENTINELS_FAILED = /^All sentinels are unreachable.*? Last error: (.*)$/s

/** The refusal `err` (an ioredis 'error' event, or a TLS handshake's error) shows, if it is one. */
export function classifyRefusal(err: unknown): Refusal | undefined {
  if (!(err instanceof Error)) return undefined
  // A Cluster that could map no node: the reason is the last node's error.
  const lastNodeError = (err as { lastNodeError?: unknown }).lastNodeError
  if (lastNodeError instanceof Error) return classifyRefusal(lastNodeError)
  const fromSentinels = SENTINELS_FAILED.exec(err.message)
  if (fromSentinels) {
    const inner = classifyText(fromSentinels[1] ?? '')
    // Only the Sentinels' own refusals arrive wrapped: the master's come as they are.
    return inner?.kind === 'credentials' ? { ...inner, kind: 'sentinel-credentials' } : inner
  }
  const code = (err as { code?: unknown }).code
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return { kind: 'certificate-name', detail: err.message }
  if (typeof code === 'string' && UNTRUSTED_CODES.has(code)) {
    return { kind: 'untrusted-certificate', detail: err.message }
  }
  return classifyText(err.message.replace(/^Ready check failed: /, ''))
}

function classifyText(message: string): Refusal | undefined {
  const detail = message.trim()
  if (AUTH_TEXT.test(detail)) return { kind: 'credentials', detail }
  if (/^NOPERM\b/.test(detail)) return { kind: 'permissions', detail }
  if (NAME_TEXT.test(detail)) return { kind: 'certificate-name', detail }
  if (UNTRUSTED_TEXT.test(detail)) return { kind: 'untrusted-certificate', detail }
  return undefined
}

/**
 * One TLS handshake with `host:port` as the client would make it, to tell a certificate problem
 * from an outage when the client itself only reports a closed connection (ioredis does so for
 * Sentinels and Cluster nodes). Bounded by `timeoutMs`; never rejects.
 */
export function probeCertificate(
  host: string,
  port: number,
  tls: ConnectionOptions,
  timeoutMs: number,
): Promise<Refusal | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ ...tls, host, port })
    const done = (refusal: Refusal | undefined) => {
      clearTimeout(timer)
      socket.destroy()
      resolve(refusal)
    }
    const timer = setTimeout(() => done(undefined), timeoutMs)
    socket.once('secureConnect', () => done(undefined))
    socket.once('error', (err) => done(classifyRefusal(err)))
  })
}
