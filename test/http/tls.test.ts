import { X509Certificate } from 'node:crypto'
import { copyFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import type { Simulator } from '../../src/simulator/server.js'
import { auth, buildBroker, SECRETS, startSimulator } from '../helpers/broker.js'
import { type CertDir, certDir, type Issued, type TestCa } from '../helpers/certs.js'
import { get, servedFingerprint, tlsClient } from '../helpers/tls-client.js'

/** The HTTPS listener and mutual TLS, built the way server.ts builds them, on a real socket. */
let certs: CertDir
let serverCa: TestCa
let clientCa: TestCa
let otherCa: TestCa
let first: Issued
let sim: Simulator

beforeAll(async () => {
  certs = await certDir()
  serverCa = await certs.ca('server-ca')
  clientCa = await certs.ca('client-ca')
  otherCa = await certs.ca('other-ca')
  first = await serverCa.issue('listener-1')
  sim = await startSimulator()
})
afterAll(async () => {
  await sim?.close()
  await certs?.remove()
})

const trustServer = {
  get ca() {
    return serverCa.cert
  },
}
const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256

/** The broker serving TLS from files it may rotate: copies of `first` in their own paths. */
async function httpsBroker(
  env: Record<string, string> = {},
  logLines?: string[],
): Promise<{ app: FastifyInstance; url: string; certFile: string; keyFile: string }> {
  const certFile = join(certs.dir, `live-${Math.random().toString(36).slice(2)}.crt`)
  const keyFile = certFile.replace(/\.crt$/, '.key')
  await copyFile(first.certFile, certFile)
  await copyFile(first.keyFile, keyFile)
  const app = await buildBroker({
    simUrl: sim.url,
    env: { TLS_CERT_FILE: certFile, TLS_KEY_FILE: keyFile, ...env },
    ...(logLines ? { logLines } : {}),
  })
  onTestFinished(() => app.close())
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, url, certFile, keyFile }
}

describe('TLS listener', () => {
  it('serves HTTPS with the configured certificate', async () => {
    const { url } = await httpsBroker()
    expect(url).toMatch(/^https:/)
    expect(await servedFingerprint(url, trustServer)).toBe(fingerprint(first.cert))
    const client = tlsClient(url, trustServer)
    expect((await get(client, '/healthz')).status).toBe(200)
    expect((await get(client, '/v1/tokens/adobe-ims', auth(SECRETS.keyAll))).status).toBe(200)
  })

  it('a rotated pair is taken on reload: new connections get it, an open one keeps working', async () => {
    const lines: string[] = []
    const { app, url, certFile, keyFile } = await httpsBroker({}, lines)
    // The client port each request came from: the same port means the same connection.
    const ports: number[] = []
    app.server.on('request', (req: { socket: { remotePort?: number } }) =>
      ports.push(req.socket.remotePort ?? 0),
    )
    const open = tlsClient(url, trustServer)
    expect((await get(open, '/healthz')).status).toBe(200)

    const next = await serverCa.issue('listener-2')
    await copyFile(next.keyFile, keyFile)
    await copyFile(next.certFile, certFile)
    expect(await app.reloadConfig('SIGHUP')).toBe(true)

    expect(await servedFingerprint(url, trustServer)).toBe(fingerprint(next.cert))
    // The connection opened before the rotation still answers, on the same socket.
    expect((await get(open, '/v1/tokens/marketplace', auth(SECRETS.keyAll))).status).toBe(200)
    expect(ports).toHaveLength(2)
    expect(ports[1]).toBe(ports[0])
    expect(lines.join('')).toContain('listener certificate reloaded')
  })

  it('refuses a certificate that does not go with the key, and keeps the running pair', async () => {
    const lines: string[] = []
    const { app, url, certFile } = await httpsBroker({}, lines)
    const stranger = await serverCa.issue('stranger')
    await copyFile(stranger.certFile, certFile)
    expect(await app.reloadConfig('SIGHUP')).toBe(false)
    expect(lines.join('')).toContain('listener certificate refused: keeping the running one')
    expect(await servedFingerprint(url, trustServer)).toBe(fingerprint(first.cert))
    expect((await get(tlsClient(url, trustServer), '/healthz')).status).toBe(200)
    // No key material in any line.
    expect(lines.join('')).not.toContain('PRIVATE KEY')
  })

  it('refuses to start on one of the pair alone, naming both variables', async () => {
    await expect(buildBroker({ simUrl: sim.url, env: { TLS_CERT_FILE: first.certFile } })).rejects.toThrow(
      'TLS_CERT_FILE and TLS_KEY_FILE must be set together (only TLS_CERT_FILE is set)',
    )
  })
})

describe('mutual TLS (TLS_CLIENT_CA_FILE)', () => {
  const token = '/v1/tokens/adobe-ims'
  let url: string
  beforeAll(async () => {
    // One broker for these checks; closed by its own hook below.
    const built = await buildBroker({
      simUrl: sim.url,
      env: {
        TLS_CERT_FILE: first.certFile,
        TLS_KEY_FILE: first.keyFile,
        TLS_CLIENT_CA_FILE: clientCa.certFile,
      },
    })
    url = await built.listen({ port: 0, host: '127.0.0.1' })
    return () => built.close()
  })

  it('without a client certificate: 401 UNAUTHENTICATED on /v1/*, while probes answer', async () => {
    const client = tlsClient(url, trustServer)
    const res = await get(client, token, auth(SECRETS.keyAll))
    expect(res.status).toBe(401)
    expect(JSON.parse(res.body).code).toBe('UNAUTHENTICATED')
    expect((await get(client, '/healthz')).status).toBe(200)
    expect((await get(client, '/readyz')).status).toBe(200)
    expect((await get(client, '/metrics')).status).toBe(200)
  })

  it('a certificate from another CA is refused', async () => {
    const stranger = await otherCa.issue('client-of-other-ca')
    const client = tlsClient(url, { ca: serverCa.cert, cert: stranger.cert, key: stranger.key })
    expect((await get(client, token, auth(SECRETS.keyAll))).status).toBe(401)
  })

  it('the right certificate and a client key: 200; the right certificate alone is not enough', async () => {
    const mine = await clientCa.issue('client-1')
    const client = tlsClient(url, { ca: serverCa.cert, cert: mine.cert, key: mine.key })
    expect((await get(client, token, auth(SECRETS.keyAll))).status).toBe(200)
    expect((await get(client, token)).status).toBe(401)
  })
})
