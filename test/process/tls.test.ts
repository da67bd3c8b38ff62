import { X509Certificate } from 'node:crypto'
import { copyFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import type { Simulator } from '../../src/simulator/server.js'
import { freePort, waitForLine } from '../../tools/process.js'
import { auth, baseEnv, brokerDocument, SECRETS, startSimulator } from '../helpers/broker.js'
import { type CertDir, certDir, type TestCa } from '../helpers/certs.js'
import { startServer } from '../helpers/server-process.js'
import { get, servedFingerprint, tlsClient } from '../helpers/tls-client.js'
import { eventually } from '../store/contract.js'

/** server.ts itself: HTTPS from TLS_CERT_FILE/TLS_KEY_FILE, rotated by `kill -HUP`. */
let certs: CertDir
let ca: TestCa
let sim: Simulator
let configPath: string

beforeAll(async () => {
  certs = await certDir()
  ca = await certs.ca('process-ca')
  sim = await startSimulator()
  configPath = join(certs.dir, 'broker.config.json')
  await writeFile(configPath, JSON.stringify(brokerDocument(sim.url)))
})
afterAll(async () => {
  await sim?.close()
  await certs?.remove()
})

describe('the server process with TLS', () => {
  it('serves HTTPS; SIGHUP rotates the certificate for new connections, the open one stays', async () => {
    const first = await ca.issue('process-1')
    const certFile = join(certs.dir, 'live.crt')
    const keyFile = join(certs.dir, 'live.key')
    await copyFile(first.certFile, certFile)
    await copyFile(first.keyFile, keyFile)
    const port = await freePort()
    const child = startServer({
      ...baseEnv(configPath),
      PORT: String(port),
      LOG_LEVEL: 'info',
      TLS_CERT_FILE: certFile,
      TLS_KEY_FILE: keyFile,
    })
    onTestFinished(() => child.stop().then(() => undefined))
    await waitForLine(child, /serving HTTPS/, 20_000)
    const url = `https://127.0.0.1:${port}`
    const trust = { ca: ca.cert }
    const open = tlsClient(url, trust)
    await eventually(async () => expect((await get(open, '/readyz')).status).toBe(200), 15_000)

    const next = await ca.issue('process-2')
    await copyFile(next.keyFile, keyFile)
    await copyFile(next.certFile, certFile)
    child.signal('SIGHUP')
    await waitForLine(child, /listener certificate reloaded/)

    expect(await servedFingerprint(url, trust)).toBe(new X509Certificate(next.cert).fingerprint256)
    expect((await get(open, '/v1/tokens/adobe-ims', auth(SECRETS.keyAll))).status).toBe(200)
    expect(child.isRunning()).toBe(true)
    expect(child.output()).not.toMatch(/CANARY|PRIVATE KEY/)
  })

  it('refuses to start with TLS_KEY_FILE alone, naming both variables', async () => {
    const child = startServer({
      ...baseEnv(configPath),
      PORT: String(await freePort()),
      TLS_KEY_FILE: '/nowhere.key',
    })
    onTestFinished(() => child.stop().then(() => undefined))
    const exit = await child.exited
    expect(exit.code).toBe(1)
    expect(child.stderr()).toContain(
      'TLS_CERT_FILE and TLS_KEY_FILE must be set together (only TLS_KEY_FILE is set)',
    )
  })
})
