import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { EQP_APP_ID, IMS_CLIENT_ID, SECRETS } from '../helpers/broker.js'
import { startListeningBroker } from '../helpers/listening-broker.js'

const root = fileURLToPath(new URL('../..', import.meta.url))

function run(env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    // As `npm run example` runs it: the client package from its source, through tsx.
    const child = spawn(
      process.execPath,
      ['--conditions=token-broker-source', '--import', 'tsx', 'examples/call-adobe.ts'],
      { cwd: root, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
    )
    let out = ''
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
    })
    child.stderr.on('data', (d: Buffer) => {
      out += d.toString()
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
    child.once('error', reject)
    child.once('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, out })
    })
  })
}

describe('examples/call-adobe.ts', () => {
  it('calls both protected resources through the client and recovers from a revoked token with one retry', async () => {
    const b = await startListeningBroker()
    const imsIssued = b.sim.issued(IMS_CLIENT_ID)
    const { code, out } = await run({
      BROKER_URL: b.url,
      BROKER_KEY: SECRETS.keyAll,
      SIMULATOR_URL: b.sim.url,
      IMS_CREDENTIAL: 'adobe-ims',
      EQP_CREDENTIAL: 'marketplace',
    })
    expect(out).toContain('GET /sample/v1/whoami through broker.fetch(): 200')
    expect(out).toMatch(/GET \/rest\/v1\/users\/MAG\d+ through the interceptor: 200/)
    expect(out).toContain('GET /sample/v1/whoami after the revocation: 200')
    expect(out).toContain('recovered by one retry with a new token: yes')
    expect(code).toBe(0)
    // One 401 (the revoked token), then the retry; one refresh; one new IMS token; EQP untouched.
    expect(b.sim.resourceCalls()).toEqual({ 200: 3, 401: 1 })
    expect(b.refreshes('adobe-ims')).toHaveLength(1)
    expect(b.sim.issued(IMS_CLIENT_ID)).toBe(imsIssued + 1)
    expect(b.refreshes('marketplace')).toHaveLength(0)
    expect(b.sim.issued(EQP_APP_ID)).toBe(1)
    expect(out).not.toContain(SECRETS.keyAll)
    expect(out).not.toMatch(/eyJ[\w-]+\.[\w-]+/)
  })
})
