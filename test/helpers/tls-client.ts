import { connect } from 'node:tls'
import { Client } from 'undici'
import { onTestFinished } from 'vitest'

export interface TlsIdentity {
  /** The CA the server's certificate must chain to. */
  ca: string
  /** A client certificate and key to present (mutual TLS). */
  cert?: string
  key?: string
}

/** The SHA-256 fingerprint of the certificate a new TLS connection to `url` is shown. */
export function servedFingerprint(url: string, id: TlsIdentity): Promise<string> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port), ca: id.ca }, () => {
      const fingerprint = socket.getPeerCertificate().fingerprint256
      socket.end()
      resolve(fingerprint)
    })
    socket.once('error', reject)
  })
}

/** One keep-alive HTTPS connection (undici Client), closed when the test ends. */
export function tlsClient(url: string, id: TlsIdentity): Client {
  const client = new Client(url, {
    connect: { ca: id.ca, ...(id.cert ? { cert: id.cert, key: id.key } : {}) },
    keepAliveTimeout: 60_000,
  })
  onTestFinished(() => client.destroy())
  return client
}

export async function get(
  client: Client,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  const res = await client.request({ method: 'GET', path, headers })
  return { status: res.statusCode, body: await res.body.text() }
}
