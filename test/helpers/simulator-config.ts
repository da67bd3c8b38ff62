import { afterAll, beforeAll } from 'vitest'
import type { Simulator } from '../../src/simulator/server.js'
import { brokerDocument, startSimulator, writeConfig } from './broker.js'

/**
 * One simulator and one broker config file naming it, shared by a file's tests (broker processes
 * started with `baseEnv(configPath)`): started before the first test, removed after the last.
 */
export function useSimulatorConfig(): { readonly sim: Simulator; readonly configPath: string } {
  let sim: Simulator | undefined
  let config: { path: string; cleanup: () => Promise<void> } | undefined
  beforeAll(async () => {
    sim = await startSimulator()
    config = await writeConfig(brokerDocument(sim.url))
  })
  afterAll(async () => {
    await config?.cleanup()
    await sim?.close()
  })
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('useSimulatorConfig: read before its beforeAll ran')
    return value
  }
  return {
    get sim() {
      return started(sim)
    },
    get configPath() {
      return started(config?.path)
    },
  }
}
