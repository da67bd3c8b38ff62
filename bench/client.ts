import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type BrokerClient, createBrokerClient } from '@token-broker/client'
import { Agent, type Dispatcher, fetch, request } from 'undici'
import type { Simulator } from '../src/simulator/server.js'
import { freePort, sleep, TSX, waitForStatus } from '../tools/process.js'
import { credentials, newEncryptionKey, newKeyPrefix, SECRETS, startBroker } from './broker.js'
import { onCleanup, startBenchChild } from './cleanup.js'
import { type Ctx, median } from './hot-path.js'
import type { Target } from './report.js'

/**
 * The client phase: what @token-broker/client costs the consumer. (1) CPU of this process per call
 * to a local "Adobe" (node:http in its own process) through broker.fetch() and the interceptor,
 * against plain undici fetch()/request() sending the same headers to the same server, in paired rounds; (2) broker requests
 * made by one client over one token lifetime of steady calls (measured first).
 * Settings (env): BENCH_CLIENT_CALLS (10000 per variant and round, in 10 interleaved blocks), BENCH_CLIENT_CONCURRENCY (8),
 * BENCH_CLIENT_LIFETIME (30 s: the token lifetime the simulator grants), BENCH_CLIENT_LIFETIME_CALLS (10000).
 */

type Variant = 'request' | 'interceptor' | 'fetch' | 'broker.fetch'
const VARIANTS: readonly Variant[] = ['request', 'interceptor', 'fetch', 'broker.fetch']
const BLOCKS = 10

export interface ClientResult {
  calls: number
  concurrency: number
  rounds: { usPerCall: Record<Variant, number>; interceptorOverRequest: number; fetchOverFetch: number }[]
  median: { usPerCall: Record<Variant, number>; interceptorOverRequest: number; fetchOverFetch: number }
  lifetime: { lifetimeS: number; calls: number; brokerRequests: number; non200: number; seconds: number }
}

function num(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isInteger(n) || n < min || n > max)
    throw new Error(`${name} must be an integer from ${min} to ${max}`)
  return n
}

/** A dispatcher that counts the requests going through it: the client's requests to the broker. */
function countingAgent(): { dispatcher: Dispatcher; count: () => number; close: () => Promise<void> } {
  const agent = new Agent()
  let n = 0
  const dispatcher = agent.compose((dispatch) => (opts, handler) => {
    n++
    return dispatch(opts, handler)
  })
  return { dispatcher, count: () => n, close: () => agent.close() }
}

async function startAdobe(): Promise<string> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'token-broker-bench-client-'))
  onCleanup(async () => rmSync(dir, { recursive: true, force: true }))
  const bodyFile = join(dir, 'body.json')
  writeFileSync(bodyFile, JSON.stringify({ client_id: 'bench', resource: 'sample' }))
  const child = startBenchChild('adobe', process.execPath, ['--import', TSX, 'bench/targets/node-http.ts'], {
    env: {
      ...process.env,
      PORT: String(port),
      BENCH_BODY_FILE: bodyFile,
      BENCH_CONTENT_TYPE: 'application/json',
    },
  })
  const url = `http://127.0.0.1:${port}/sample/v1/whoami`
  await waitForStatus(url, { child })
  return url
}

/** Runs `calls` calls, `concurrency` at a time; returns this process's CPU µs per call. */
async function cpuPerCall(call: () => Promise<number>, calls: number, concurrency: number): Promise<number> {
  let next = 0
  let bad = 0
  const worker = async () => {
    while (next < Math.round(calls)) {
      next++
      if ((await call()) !== 200) bad++
    }
  }
  const before = process.cpuUsage()
  await Promise.all(Array.from({ length: concurrency }, worker))
  const used = process.cpuUsage(before)
  if (bad > 0) throw new Error(`${bad} of ${calls} calls were not 200`)
  return (used.user + used.system) / calls
}

export async function clientPhase(ctx: Ctx, sim: Simulator): Promise<ClientResult> {
  const calls = num('BENCH_CLIENT_CALLS', 10_000, 100, 1_000_000)
  const concurrency = num('BENCH_CLIENT_CONCURRENCY', 8, 1, 256)
  const lifetimeS = num('BENCH_CLIENT_LIFETIME', 30, 10, 3600)
  const lifetimeCalls = num('BENCH_CLIENT_LIFETIME_CALLS', 10_000, 100, 1_000_000)
  const adobe = await startAdobe()

  const [cred] = credentials('cl', 1)
  // A short lifetime, so one whole lifetime (and the refresh near its end) fits in the bench.
  sim.behave(cred!.upstreamId, { expiresIn: lifetimeS })
  const broker = await startBroker({
    name: 'client-broker',
    simUrl: ctx.simUrl,
    creds: [cred!],
    redisUrl: ctx.redisUrl,
    keyPrefix: newKeyPrefix('client'),
    encryptionKey: newEncryptionKey(),
  })
  onCleanup(() => broker.stop())

  // (1) Broker requests over one token lifetime: a cold client, calls spread evenly over it, from a
  // token just minted (the broker's warm-up, moments ago; a refresh without rejected_token returns
  // it, or mints when it is older than 10 s).
  const fresh = await request(`${broker.url}/v1/tokens/${cred!.id}/refresh`, {
    method: 'POST',
    headers: { authorization: `Bearer ${SECRETS.key}` },
  })
  await fresh.body.dump()
  const counter = countingAgent()
  const cold = createBrokerClient({ url: broker.url, key: SECRETS.key, dispatcher: counter.dispatcher })
  const lifetimeAgent = new Agent().compose(cold.interceptor(cred!.id))
  const started = Date.now()
  const batch = 20
  let non200 = 0
  for (let i = 0; i < lifetimeCalls; i += batch) {
    const due = started + (i / lifetimeCalls) * lifetimeS * 1000
    if (due > Date.now()) await sleep(due - Date.now())
    const statuses = await Promise.all(
      Array.from({ length: Math.min(batch, lifetimeCalls - i) }, async () => {
        const r = await request(adobe, { dispatcher: lifetimeAgent })
        await r.body.dump()
        return r.statusCode
      }),
    )
    non200 += statuses.filter((s) => s !== 200).length
  }
  const seconds = (Date.now() - started) / 1000
  await cold.close()
  await counter.close()
  ctx.log(
    `lifetime: ${lifetimeCalls} calls over ${seconds.toFixed(1)} s (token lifetime ${lifetimeS} s): ${counter.count()} broker requests, ${non200} non-200`,
  )

  // (2) CPU per call.
  const plain = new Agent()
  const client: BrokerClient = createBrokerClient({ url: broker.url, key: SECRETS.key })
  const composed = new Agent().compose(client.interceptor(cred!.id))
  onCleanup(async () => {
    await client.close()
    await plain.close()
  })
  // The baselines send the same headers by hand, as a service without the client would.
  const headers = await client.headers(cred!.id)
  const run: Record<Variant, () => Promise<number>> = {
    request: async () => {
      const r = await request(adobe, { dispatcher: plain, headers })
      await r.body.text()
      return r.statusCode
    },
    interceptor: async () => {
      const r = await request(adobe, { dispatcher: composed })
      await r.body.text()
      return r.statusCode
    },
    fetch: async () => {
      const r = await fetch(adobe, { headers })
      await r.text()
      return r.status
    },
    'broker.fetch': async () => {
      const r = await client.fetch(cred!.id, adobe)
      await r.text()
      return r.status
    },
  }
  for (const v of VARIANTS) await cpuPerCall(run[v], Math.min(calls, 1000), concurrency) // warm-up
  const rounds: ClientResult['rounds'] = []
  for (let round = 0; round < ctx.cfg.rounds; round++) {
    // Short blocks, variants interleaved, so a change in the machine's load hits all of them alike.
    const us = { request: 0, interceptor: 0, fetch: 0, 'broker.fetch': 0 } as Record<Variant, number>
    for (let block = 0; block < BLOCKS; block++) {
      const order = (round + block) % 2 === 0 ? VARIANTS : [...VARIANTS].reverse()
      for (const v of order) us[v] += (await cpuPerCall(run[v], calls / BLOCKS, concurrency)) / BLOCKS
    }
    const r = {
      usPerCall: us,
      interceptorOverRequest: us.interceptor / us.request,
      fetchOverFetch: us['broker.fetch'] / us.fetch,
    }
    rounds.push(r)
    ctx.log(
      `round ${round + 1}: CPU µs/call ${VARIANTS.map((v) => `${v} ${us[v].toFixed(1)}`).join(', ')}; interceptor/request ${r.interceptorOverRequest.toFixed(3)}x, broker.fetch/fetch ${r.fetchOverFetch.toFixed(3)}x`,
    )
  }
  const medianUs = Object.fromEntries(
    VARIANTS.map((v) => [v, median(rounds.map((r) => r.usPerCall[v]))]),
  ) as Record<Variant, number>

  return {
    calls,
    concurrency,
    rounds,
    median: {
      usPerCall: medianUs,
      interceptorOverRequest: median(rounds.map((r) => r.interceptorOverRequest)),
      fetchOverFetch: median(rounds.map((r) => r.fetchOverFetch)),
    },
    lifetime: { lifetimeS, calls: lifetimeCalls, brokerRequests: counter.count(), non200, seconds },
  }
}

const CPU_TARGET = 1.05
const REQUESTS_TARGET = 2

export function clientTargets(r: ClientResult | undefined): Target[] {
  const m = r?.median
  return [
    {
      name: `client: consumer CPU per call <= ${CPU_TARGET}x plain undici`,
      pass: m ? Math.max(m.interceptorOverRequest, m.fetchOverFetch) <= CPU_TARGET : undefined,
      detail: m
        ? `medians of paired rounds: interceptor/request ${m.interceptorOverRequest.toFixed(3)}x, broker.fetch/fetch ${m.fetchOverFetch.toFixed(3)}x`
        : 'client phase not run',
    },
    {
      name: `client: <= ${REQUESTS_TARGET} broker requests per ${r?.lifetime.calls ?? 10_000} calls over one token lifetime`,
      pass: r ? r.lifetime.brokerRequests <= REQUESTS_TARGET && r.lifetime.non200 === 0 : undefined,
      detail: r
        ? `${r.lifetime.brokerRequests} over ${r.lifetime.seconds.toFixed(1)} s (lifetime ${r.lifetime.lifetimeS} s), ${r.lifetime.non200} non-200`
        : 'client phase not run',
    },
  ]
}

export function printClient(r: ClientResult, out: (line: string) => void): void {
  const us = r.median.usPerCall
  out(
    `\nclient: this process's CPU per call, ${r.calls} calls x ${r.rounds.length} rounds, ${r.concurrency} in flight (medians): ${VARIANTS.map((v) => `${v} ${us[v].toFixed(1)} µs`).join(', ')}`,
  )
  out(
    `  interceptor/request ${r.median.interceptorOverRequest.toFixed(3)}x, broker.fetch/fetch ${r.median.fetchOverFetch.toFixed(3)}x; broker requests over one ${r.lifetime.lifetimeS} s lifetime: ${r.lifetime.brokerRequests} for ${r.lifetime.calls} calls`,
  )
}
