import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import type { Simulator } from '../../src/simulator/server.js'
import { freePort } from '../../tools/process.js'
import { buildBroker, startSimulator } from '../helpers/broker.js'
import { type CertDir, certDir, type TestCa } from '../helpers/certs.js'

/** The image's HEALTHCHECK command, run for real with node against a broker on a socket. */
const run = promisify(execFile)

function healthcheckArgv(): string[] {
  const dockerfile = readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8').replace(
    /\\\r?\n/g,
    ' ',
  )
  const checks = [...dockerfile.matchAll(/^HEALTHCHECK\b.*?\bCMD\s+(\[.*\])\s*$/gm)]
  const last = checks.at(-1)?.[1]
  if (last === undefined) throw new Error('no HEALTHCHECK in exec form')
  return JSON.parse(last) as string[]
}

async function probe(env: Record<string, string>): Promise<number> {
  const [command, ...args] = healthcheckArgv()
  expect(command).toBe('node')
  try {
    await run(process.execPath, args, { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 10_000 })
    return 0
  } catch (err) {
    return (err as { code?: number }).code ?? -1
  }
}

let certs: CertDir
let ca: TestCa
let sim: Simulator
beforeAll(async () => {
  certs = await certDir()
  ca = await certs.ca('probe-ca')
  sim = await startSimulator()
})
afterAll(async () => {
  await sim?.close()
  await certs?.remove()
})

async function listening(env: Record<string, string>): Promise<string> {
  const app = await buildBroker({ simUrl: sim.url, env, warm: false })
  onTestFinished(() => app.close())
  const port = await freePort()
  await app.listen({ port, host: '127.0.0.1' })
  return String(port)
}

describe('the image HEALTHCHECK', () => {
  it('passes on a plain HTTP broker and fails when nothing listens', async () => {
    const port = await listening({})
    expect(await probe({ PORT: port })).toBe(0)
    expect(await probe({ PORT: String(await freePort()) })).toBe(1)
  })

  it('passes on an HTTPS broker with mutual TLS, with no client certificate', async () => {
    const leaf = await ca.issue('probe-listener')
    const env = { TLS_CERT_FILE: leaf.certFile, TLS_KEY_FILE: leaf.keyFile, TLS_CLIENT_CA_FILE: ca.certFile }
    const port = await listening(env)
    expect(await probe({ PORT: port, ...env })).toBe(0)
    // Speaking plain HTTP to it fails: the probe really follows TLS_CERT_FILE.
    expect(await probe({ PORT: port })).toBe(1)
  })
})
