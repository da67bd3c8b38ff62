import { Agent, request } from 'undici'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { createSimulator, type SimulatorOptions } from '../../src/simulator/server.js'

const form = new URLSearchParams({
  client_id: 'ims-1',
  client_secret: 'right',
  grant_type: 'client_credentials',
}).toString()

/** A simulator whose peers are named by the loopback address they connect from. */
async function simulator(opts: SimulatorOptions = {}) {
  const sim = createSimulator({
    peer: ({ address }) => (address.endsWith('127.0.0.2') ? 'second' : 'first'),
    ...opts,
  })
  const url = await sim.listen(0, '127.0.0.1')
  onTestFinished(() => sim.close())
  return { sim, url }
}

/** A client that connects from `localAddress` (any of 127.0.0.0/8 is this host on Linux). */
function client(localAddress: string) {
  const agent = new Agent({ localAddress })
  onTestFinished(() => agent.destroy())
  return agent
}

/** Sends `n` token requests at once through `agent`; they settle when the simulator closes. */
const send = (url: string, agent: Agent, n: number) =>
  Array.from({ length: n }, () =>
    request(`${url}/ims/token/v3`, {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form,
    }).then(
      async (res) => {
        await res.body.text()
        return res.statusCode
      },
      () => 0,
    ),
  )

describe('simulator: requests per peer', () => {
  it('counts token requests and their peak in flight per peer, and in all', async () => {
    const { sim, url } = await simulator()
    // Answers held back long enough that every request is in flight when the peaks are read.
    sim.behave('*', { latencyMs: 30_000 })
    const pending = [...send(url, client('127.0.0.1'), 3), ...send(url, client('127.0.0.2'), 2)]
    await vi.waitFor(() => expect(sim.mints()).toBe(5), { timeout: 5000 })

    expect(sim.maxInFlight()).toBe(5)
    expect(sim.maxInFlight('first')).toBe(3)
    expect(sim.maxInFlight('second')).toBe(2)
    expect(sim.maxInFlight('nobody')).toBe(0)
    expect(sim.peers()).toEqual({
      first: { requests: 3, maxInFlight: 3 },
      second: { requests: 2, maxInFlight: 2 },
    })

    // A reset starts each peak from what is in flight now.
    sim.reset()
    expect(sim.peers()).toEqual({
      first: { requests: 0, maxInFlight: 3 },
      second: { requests: 0, maxInFlight: 2 },
    })
    await sim.close()
    await Promise.all(pending)
  })

  it('names each request in the log, which keeps the latest logLimit', async () => {
    const { sim, url } = await simulator({ logLimit: 2 })
    await Promise.all(send(url, client('127.0.0.2'), 1))
    await Promise.all(send(url, client('127.0.0.1'), 2))
    expect(sim.requests.map((r) => r.peer)).toEqual(['first', 'first'])
    expect(sim.mints()).toBe(3)
    expect(sim.peers()).toEqual({
      first: { requests: 2, maxInFlight: 1 },
      second: { requests: 1, maxInFlight: 1 },
    })
  })

  it('asks again for a connection it could not name, and counts nothing per peer meanwhile', async () => {
    let known = false
    const { sim, url } = await simulator({ peer: () => (known ? 'late' : undefined) })
    const agent = client('127.0.0.1')
    await Promise.all(send(url, agent, 1))
    expect(sim.peers()).toEqual({})
    known = true
    await Promise.all(send(url, agent, 1))
    expect(sim.peers()).toEqual({ late: { requests: 1, maxInFlight: 1 } })
    expect(sim.requests.map((r) => r.peer)).toEqual([undefined, 'late'])
  })
})
