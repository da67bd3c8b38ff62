import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import type { Simulator } from '../../src/simulator/server.js'
import { buildBroker, startSimulator } from '../helpers/broker.js'
import { shiftableClock } from '../helpers/manual-clock.js'
import { noJitter, refresh } from '../http/support.js'

/** The upstream's `Date` header against the broker's clock: noted per credential, warned past 30 s. */
let sim: Simulator
beforeAll(async () => {
  sim = await startSimulator()
})
afterAll(() => sim?.close())

async function brokerWithClockAhead(ms: number) {
  const clock = shiftableClock()
  clock.shift(ms)
  const lines: string[] = []
  const app = await buildBroker({
    simUrl: sim.url,
    clock,
    random: noJitter,
    logLines: lines,
    env: { LOG_LEVEL: 'info' },
  })
  onTestFinished(() => app.close())
  const offsets = async () => {
    const ready = (await app.inject({ url: '/readyz' })).json()
    return {
      ims: ready.credentials['adobe-ims'].clock_offset_ms as number | null,
      eqp: ready.credentials.marketplace.clock_offset_ms as number | null,
    }
  }
  const warnings = () => lines.filter((l) => l.includes('upstream clock differs'))
  return { app, offsets, warnings }
}

describe('upstream clock offset', () => {
  it('a broker clock 60 s ahead: /readyz shows about -60 s per credential, one warning per upstream', async () => {
    const { app, offsets, warnings } = await brokerWithClockAhead(60_000)
    const { ims, eqp } = await offsets()
    // The Date header has whole seconds, and the answer takes a moment.
    for (const offset of [ims, eqp]) {
      expect(offset).toBeGreaterThan(-62_000)
      expect(offset).toBeLessThan(-58_000)
    }
    // Both credentials share the simulator's origin; another mint there warns no more.
    expect((await refresh(app, 'adobe-ims', { rejected_token: 'x' })).res.statusCode).toBe(200)
    expect(warnings()).toHaveLength(1)
    expect(JSON.parse(warnings()[0]!)).toMatchObject({ level: 40, upstream: sim.url })
  })

  it('clocks that agree: a small offset and no warning', async () => {
    const { offsets, warnings } = await brokerWithClockAhead(0)
    const { ims } = await offsets()
    expect(Math.abs(ims ?? Number.NaN)).toBeLessThan(2_000)
    expect(warnings()).toEqual([])
  })
})
