import type { FastifyInstance } from 'fastify'
import { onTestFinished } from 'vitest'
import type { Behaviour, Simulator } from '../../src/simulator/server.js'
import { brokerDocument, buildBroker, startSimulator, type TestBrokerOptions } from './broker.js'

/** One request the broker received, as its HTTP server saw it (never the key). */
export interface SeenRequest {
  method: string
  path: string
  query: URLSearchParams
}

export interface ListeningBroker {
  sim: Simulator
  app: FastifyInstance
  /** The broker's base URL on a real socket. */
  url: string
  /** Every `/v1/*` request the broker has received, in order. */
  seen: SeenRequest[]
  /** Token requests (`GET /v1/tokens/...`) and refreshes received since the start. */
  gets(credential?: string): SeenRequest[]
  refreshes(credential?: string): SeenRequest[]
}

/**
 * The simulator and the real broker app listening on a socket, with a log of the requests the
 * broker received; both are closed when the test ends.
 */
export async function startListeningBroker(
  opts: Omit<TestBrokerOptions, 'simUrl' | 'document'> & {
    behave?: Record<string, Partial<Behaviour>>
    /** Credentials added to the test document (their base URL is set to the simulator's). */
    credentials?: Record<string, Record<string, unknown>>
  } = {},
): Promise<ListeningBroker> {
  const sim = await startSimulator()
  onTestFinished(() => sim.close())
  // Before the broker starts, so its warm-up already meets these behaviours.
  for (const [id, b] of Object.entries(opts.behave ?? {})) sim.behave(id, b)
  const extra = Object.fromEntries(
    Object.entries(opts.credentials ?? {}).map(([id, c]) => [id, { ...c, baseUrl: sim.url }]),
  )
  const app = await buildBroker({ ...opts, simUrl: sim.url, document: brokerDocument(sim.url, extra) })
  onTestFinished(() => app.close())
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  const seen: SeenRequest[] = []
  app.server.on('request', (req: { method?: string; url?: string }) => {
    const u = new URL(req.url ?? '/', 'http://broker')
    if (u.pathname.startsWith('/v1/'))
      seen.push({ method: req.method ?? '', path: u.pathname, query: u.searchParams })
  })
  const of = (credential: string | undefined, refresh: boolean) =>
    seen.filter(
      (r) => r.path.startsWith(`/v1/tokens/${credential ?? ''}`) && r.path.endsWith('/refresh') === refresh,
    )
  return { sim, app, url, seen, gets: (c) => of(c, false), refreshes: (c) => of(c, true) }
}
