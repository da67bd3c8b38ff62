import { Agent, request } from 'undici'
import type { Simulator } from '../src/simulator/server.js'
import {
  AUTH,
  type Broker,
  credentials,
  newEncryptionKey,
  newKeyPrefix,
  spawnBroker,
  waitReady,
  writeConfig,
} from './broker.js'
import type { Ctx } from './hot-path.js'

export interface FleetEvent {
  event: string
  /** Upstream token requests per credential during the event, from the simulator's counters. */
  mints: Record<string, number>
  expected: Record<string, number>
  ok: boolean
  requests?: number
  non200?: number
  ms: number
}

export interface FleetResult {
  replicas: number
  credentials: string[]
  events: FleetEvent[]
  /** Sum over the replicas of token_broker_mints_total{outcome="success"}, per credential, at the end. */
  metricsMints: Record<string, number>
  refresh: {
    credential: string
    distinctTokens: number
    sameNewToken: boolean
    differsFromRejected: boolean
    replicasAgreeAfter: boolean
  }
  ok: boolean
}

const REPLICAS = 3
const GETS = 1000
const REFRESHES = 300

interface Answer {
  status: number
  accessToken: string | undefined
}

export async function fleet(ctx: Ctx, sim: Simulator): Promise<FleetResult> {
  const creds = credentials('fleet', 4, 'mixed')
  const ids = creds.map((c) => c.id)
  const configPath = writeConfig(ctx.simUrl, creds)
  const base = {
    simUrl: ctx.simUrl,
    creds,
    redisUrl: ctx.redisUrl,
    keyPrefix: newKeyPrefix('fleet'),
    encryptionKey: newEncryptionKey(),
  }
  // Enough sockets for every request at once; closed after the phase.
  const agent = new Agent({ connections: GETS, pipelining: 1, keepAliveTimeout: 10_000 })
  const brokers: Broker[] = []
  const counts = () => Object.fromEntries(creds.map((c) => [c.id, sim.mints(c.upstreamId)]))
  const delta = (before: Record<string, number>) => {
    const now = counts()
    return Object.fromEntries(ids.map((id) => [id, now[id]! - before[id]!]))
  }
  const call = async (url: string, method: 'GET' | 'POST', body?: string): Promise<Answer> => {
    try {
      const res = await request(url, {
        method,
        dispatcher: agent,
        headers: body === undefined ? AUTH : { ...AUTH, 'content-type': 'application/json' },
        body,
        headersTimeout: 30_000,
        bodyTimeout: 30_000,
      })
      const text = await res.body.text()
      let accessToken: string | undefined
      try {
        accessToken = (JSON.parse(text) as { access_token?: string }).access_token
      } catch {
        // not JSON: counted as a failure by its status
      }
      return { status: res.statusCode, accessToken }
    } catch {
      return { status: 0, accessToken: undefined }
    }
  }
  const events: FleetEvent[] = []
  const record = (e: Omit<FleetEvent, 'ok'>) => {
    const ok = ids.every((id) => e.mints[id] === e.expected[id]) && !e.non200
    events.push({ ...e, ok })
    ctx.log(
      `  ${e.event}: mints ${ids.map((id) => `${id}=${e.mints[id]}`).join(' ')} (expected ${ids.map((id) => e.expected[id]).join('/')})${e.non200 ? `, ${e.non200} non-200` : ''} in ${e.ms.toFixed(0)} ms ${ok ? 'OK' : 'MISMATCH'}`,
    )
  }

  try {
    sim.reset()
    // 1. Cold start: three replicas at once on an empty Redis prefix.
    let before = counts()
    let t0 = performance.now()
    for (let i = 0; i < REPLICAS; i++)
      brokers.push(await spawnBroker({ ...base, name: `fleet-${i}` }, configPath))
    await Promise.all(brokers.map((b) => waitReady(b, 60_000)))
    record({
      event: `cold start, ${REPLICAS} replicas`,
      mints: delta(before),
      expected: Object.fromEntries(ids.map((id) => [id, 1])),
      ms: performance.now() - t0,
    })

    // 2. 1000 concurrent token requests spread over the replicas and the credentials.
    before = counts()
    t0 = performance.now()
    const gets = await Promise.all(
      Array.from({ length: GETS }, (_, i) =>
        call(`${brokers[i % REPLICAS]!.url}/v1/tokens/${ids[i % ids.length]}`, 'GET'),
      ),
    )
    record({
      event: `${GETS} concurrent GETs`,
      mints: delta(before),
      expected: Object.fromEntries(ids.map((id) => [id, 0])),
      requests: GETS,
      non200: gets.filter((a) => a.status !== 200).length,
      ms: performance.now() - t0,
    })

    // 3. 300 concurrent refreshes naming the current token as rejected (Adobe said 401 to it).
    const target = ids[0]!
    const current = await call(`${brokers[0]!.url}/v1/tokens/${target}`, 'GET')
    if (current.status !== 200 || !current.accessToken)
      throw new Error(`fleet: cannot read ${target}'s token`)
    const rejected = current.accessToken
    const body = JSON.stringify({ rejected_token: rejected })
    before = counts()
    t0 = performance.now()
    const refreshes = await Promise.all(
      Array.from({ length: REFRESHES }, (_, i) =>
        call(`${brokers[i % REPLICAS]!.url}/v1/tokens/${target}/refresh`, 'POST', body),
      ),
    )
    const ms = performance.now() - t0
    const tokens = new Set(refreshes.filter((a) => a.status === 200).map((a) => a.accessToken))
    const newToken = [...tokens][0]
    record({
      event: `${REFRESHES} concurrent refreshes of ${target}`,
      mints: delta(before),
      expected: Object.fromEntries(ids.map((id) => [id, id === target ? 1 : 0])),
      requests: REFRESHES,
      non200: refreshes.filter((a) => a.status !== 200).length,
      ms,
    })
    // Every replica serves the new token afterwards (propagation by pub/sub).
    const after = await Promise.all(brokers.map((b) => call(`${b.url}/v1/tokens/${target}`, 'GET')))
    const refresh = {
      credential: target,
      distinctTokens: tokens.size,
      sameNewToken: tokens.size === 1,
      differsFromRejected: newToken !== undefined && newToken !== rejected,
      replicasAgreeAfter: after.every((a) => a.status === 200 && a.accessToken === newToken),
    }
    ctx.log(
      `  refresh: ${refresh.distinctTokens} distinct token(s) among ${REFRESHES} answers, new != rejected: ${refresh.differsFromRejected}, all replicas serve it after: ${refresh.replicasAgreeAfter}`,
    )

    const metricsMints: Record<string, number> = Object.fromEntries(ids.map((id) => [id, 0]))
    for (const b of brokers) {
      const text = await (await fetch(`${b.url}/metrics`)).text()
      for (const m of text.matchAll(/^token_broker_mints_total\{([^}]*)\} (\d+)/gm)) {
        const labels = m[1]!
        const id = /credential="([^"]+)"/.exec(labels)?.[1]
        if (id !== undefined && id in metricsMints && labels.includes('outcome="success"')) {
          metricsMints[id]! += Number(m[2])
        }
      }
    }
    return {
      replicas: REPLICAS,
      credentials: ids,
      events,
      metricsMints,
      refresh,
      ok: events.every((e) => e.ok) && refresh.sameNewToken && refresh.differsFromRejected,
    }
  } finally {
    await Promise.all(brokers.map((b) => b.stop()))
    await agent.close()
  }
}
