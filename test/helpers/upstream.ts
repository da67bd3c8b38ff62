import type { Dispatcher } from 'undici'
import { afterAll, beforeAll } from 'vitest'
import { createSimulator, type Simulator, type SimulatorOptions } from '../../src/simulator/server.js'
import { createDispatcher } from '../../src/upstreams/dispatcher.js'

export interface Upstream {
  readonly sim: Simulator
  /** The broker's own dispatcher, as its mints use it. */
  readonly dispatcher: Dispatcher
  /** The simulator's base URL, once it listens (from the first test on). */
  readonly url: string
}

/**
 * The simulator accepting `secrets`, and a dispatcher to reach it, for the tests of the calling file
 * or describe block: listening before the first, both closed after the last.
 */
export function useUpstream(secrets: SimulatorOptions['secrets']): Upstream {
  const sim = createSimulator({ secrets })
  const dispatcher = createDispatcher()
  let url = ''
  beforeAll(async () => {
    url = await sim.listen()
  })
  afterAll(async () => {
    await dispatcher.close()
    await sim.close()
  })
  return {
    sim,
    dispatcher,
    get url() {
      return url
    },
  }
}
