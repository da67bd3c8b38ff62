import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { createSecureContext } from 'node:tls'
import { ConfigError } from './errors.js'
import type { EnvSource } from './secrets.js'

/** The listener's certificate chain and key (PEM), and the CA client certificates must chain to. */
export interface ListenerTls {
  readonly cert: Buffer
  readonly key: Buffer
  /** TLS_CLIENT_CA_FILE: when set, /v1/* also asks for a client certificate signed by it. */
  readonly ca?: Buffer
  /** Of the three files' contents: tells a rotated pair from the running one without keeping copies around. */
  readonly digest: string
}

async function readPem(name: string, path: string): Promise<Buffer> {
  try {
    return await readFile(path)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable'
    throw new ConfigError(`${name} cannot be read (${code})`)
  }
}

/**
 * Reads TLS_CERT_FILE, TLS_KEY_FILE and TLS_CLIENT_CA_FILE from `env` (empty = unset). Undefined when
 * the listener is plain HTTP. Refuses one of the pair without the other, a client CA without TLS, and
 * a certificate that does not go with its key; messages name the variables, never a file's content.
 */
export async function readListenerTls(env: EnvSource): Promise<ListenerTls | undefined> {
  const certFile = env.TLS_CERT_FILE || undefined
  const keyFile = env.TLS_KEY_FILE || undefined
  const caFile = env.TLS_CLIENT_CA_FILE || undefined
  if (certFile === undefined && keyFile === undefined) {
    if (caFile !== undefined) throw new ConfigError('TLS_CLIENT_CA_FILE needs TLS_CERT_FILE and TLS_KEY_FILE')
    return undefined
  }
  if (certFile === undefined || keyFile === undefined) {
    const set = certFile === undefined ? 'TLS_KEY_FILE' : 'TLS_CERT_FILE'
    throw new ConfigError(`TLS_CERT_FILE and TLS_KEY_FILE must be set together (only ${set} is set)`)
  }
  const cert = await readPem('TLS_CERT_FILE', certFile)
  const key = await readPem('TLS_KEY_FILE', keyFile)
  const ca = caFile === undefined ? undefined : await readPem('TLS_CLIENT_CA_FILE', caFile)
  try {
    // The same check Node makes when the server takes the pair: refused here with a clear line instead.
    createSecureContext({ cert, key, ...(ca === undefined ? {} : { ca }) })
  } catch (err) {
    throw new ConfigError(
      `TLS_CERT_FILE, TLS_KEY_FILE${ca === undefined ? '' : ', TLS_CLIENT_CA_FILE'} are not a usable set: ${opensslReason(err)}`,
    )
  }
  const hash = createHash('sha256').update(cert).update('\0').update(key)
  if (ca !== undefined) hash.update('\0').update(ca)
  return { cert, key, ...(ca === undefined ? {} : { ca }), digest: hash.digest('hex') }
}

/** OpenSSL's reason ("key values mismatch", "no start line"): fixed text, never key material. */
function opensslReason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err)
  const reason = /::([a-z0-9 _-]+)$/i.exec(message)?.[1] ?? (err as { code?: string }).code ?? 'invalid PEM'
  return reason.slice(0, 100)
}
