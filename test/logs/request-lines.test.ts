import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Simulator } from '../../src/simulator/server.js'
import { auth, buildBroker, SECRETS, startSimulator } from '../helpers/broker.js'

// Whether a request gets log lines is settled once, from LOG_LEVEL: none at info (the hot path
// stays quiet), "incoming request" and "request completed" with a reqId at debug.
let sim: Simulator
beforeAll(async () => {
  sim = await startSimulator()
})
afterAll(async () => {
  await sim.close()
})

async function linesOfOneTokenRequest(level: string): Promise<string[]> {
  const lines: string[] = []
  const app = await buildBroker({ simUrl: sim.url, logLines: lines, env: { LOG_LEVEL: level } })
  const before = lines.length
  const res = await app.inject({ url: '/v1/tokens/adobe-ims', headers: auth(SECRETS.keyAll) })
  expect(res.statusCode).toBe(200)
  const during = lines.slice(before)
  await app.close()
  return during
}

describe('request log lines', () => {
  it('are not written at info', async () => {
    expect(await linesOfOneTokenRequest('info')).toEqual([])
  })

  it('are written at debug, with a request id', async () => {
    const text = (await linesOfOneTokenRequest('debug')).join('')
    expect(text).toMatch(/incoming request/)
    expect(text).toMatch(/request completed/)
    expect(text).toMatch(/"reqId":"/)
  })
})
