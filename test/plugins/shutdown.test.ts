import { describe, expect, it } from 'vitest'
import {
  PHASE_MS,
  SHUTDOWN_BUDGET_MS,
  SHUTDOWN_MARGIN_MS,
  WORST_CASE_SHUTDOWN_MS,
} from '../../src/plugins/shutdown.js'

describe('shutdown phases', () => {
  it('add up, in the worst case, to clearly less than the budget close-with-grace enforces', () => {
    const sum = Object.values(PHASE_MS).reduce((total, ms) => total + ms, 0)
    expect(WORST_CASE_SHUTDOWN_MS).toBe(sum)
    expect(SHUTDOWN_MARGIN_MS).toBeGreaterThanOrEqual(1_000)
    expect(sum + SHUTDOWN_MARGIN_MS).toBeLessThanOrEqual(SHUTDOWN_BUDGET_MS)
  })

  it('bound every close step, the token manager included', () => {
    expect(Object.keys(PHASE_MS).sort()).toEqual(['inFlight', 'pool', 'store', 'tokens', 'upstreamCut'])
    for (const ms of Object.values(PHASE_MS)) expect(ms).toBeGreaterThan(0)
  })
})
