import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo, Socket } from 'node:net'
import {
  type Answer,
  defaultLifetime,
  errorAnswer,
  grantAnswer,
  type Kind,
  malformedAnswer,
  parseEqpRequest,
  parseImsRequest,
  rejectAnswer,
} from './answers.js'
import { type Behaviour, parseBehaveRequest } from './behaviour.js'
import { createPeerCounts, type PeerStats } from './peers.js'
import { createTokenRegistry, resourceAnswer } from './resources.js'

export type { Behaviour, MalformedKind } from './behaviour.js'
export type { PeerStats } from './peers.js'

export interface SimulatorOptions {
  /**
   * Expected secret per id, or several (Adobe lets a client hold two during a rotation). When absent,
   * any non-empty secret is accepted.
   */
  secrets?:
    | Record<string, string | readonly string[]>
    | ((id: string) => string | readonly string[] | undefined)
  /** The clock tokens expire by (epoch ms); default Date.now. */
  now?: () => number
  /** Serve HTTPS with this certificate and key (PEM), as Adobe does; plain HTTP when absent. */
  tls?: { cert: string | Buffer; key: string | Buffer }
  /**
   * Names the client behind a connection from its remote address (e.g. which of several broker
   * processes it is), asked until it gives a name, then once per connection: token requests and
   * their peak in flight are then also counted per peer (`peers()`), and each request records it.
   */
  peer?: (remote: { address: string; port: number }) => string | undefined
  /**
   * The lifetime (s) granted to a token issued now, over any behaviour's `expiresIn`; undefined leaves
   * it to them. Lets a bench hand out tokens that all come due at one moment, say.
   */
  lifetime?: (id: string, now: number) => number | undefined
  /** How many token requests `requests` keeps, the latest (default 1000). */
  logLimit?: number
}

/** One token request received; never holds a secret or a token. */
export interface SimulatedRequest {
  id: string
  kind: Kind
  at: number
  ok: boolean
  /** Who sent it, when SimulatorOptions.peer named the connection. */
  peer?: string
}

export interface Simulator {
  /** Resolves with the base URL, e.g. `http://127.0.0.1:43123`. */
  listen(port?: number, host?: string): Promise<string>
  /** Also ends hanging requests and open keep-alive sockets, so tests never wait on them. */
  close(): Promise<void>
  /** The base URL; throws before listen(). */
  readonly url: string
  /** Merges into the behaviour for `id` (an IMS client_id or EQP appId), or for every id with '*'. */
  behave(id: string, b: Partial<Behaviour>): void
  /** Back to 'ok' for everyone, counters and log cleared. */
  reset(): void
  /** Token requests received (every outcome), in total or for one id. */
  mints(id?: string): number
  /** The most token requests it was answering at once since start (or reset), in all or from one peer. */
  maxInFlight(peer?: string): number
  /** Token requests and their peak in flight per peer named by SimulatorOptions.peer, since start (or reset). */
  peers(): Record<string, PeerStats>
  /** Tokens issued, in total or for one id. */
  issued(id?: string): number
  readonly requests: readonly SimulatedRequest[]
  /** Revokes one issued token, or every token issued to `id`; returns how many were revoked. */
  revoke(which: { token?: string; id?: string }): number
  /** Requests to the protected resources, by outcome status (e.g. `{200: 3, 401: 1}`). */
  resourceCalls(): Record<number, number>
}

const PATHS: Readonly<Record<string, Kind>> = { '/ims/token/v3': 'ims', '/rest/v1/app/session/token': 'eqp' }
const MAX_BODY = 64 * 1024
const DEFAULT_LOG_LIMIT = 1000

class BodyTooLarge extends Error {}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    // Keep draining so the answer can still be written on this connection.
    if (size <= MAX_BODY) chunks.push(chunk as Buffer)
  }
  if (size > MAX_BODY) throw new BodyTooLarge()
  return Buffer.concat(chunks).toString('utf8')
}

function send(res: ServerResponse, a: Answer, headers: Record<string, string> = {}): void {
  if (res.destroyed || res.headersSent) return
  res.writeHead(a.status, { 'content-type': a.contentType, 'cache-control': 'no-store', ...headers })
  res.end(a.body)
}

const sendJson = (res: ServerResponse, status: number, body: unknown): void =>
  send(res, { status, contentType: 'application/json', body: JSON.stringify(body) })

const increment = <K>(m: Map<K, number>, id: K): void => {
  m.set(id, (m.get(id) ?? 0) + 1)
}
const count = (m: Map<string, number>, id?: string): number =>
  id === undefined ? [...m.values()].reduce((a, b) => a + b, 0) : (m.get(id) ?? 0)

/** A stand-in for Adobe IMS and EQP token endpoints, with switches to make them misbehave. */
export function createSimulator(opts: SimulatorOptions = {}): Simulator {
  const behaviours = new Map<string, Behaviour>()
  const minted = new Map<string, number>()
  const issuedBy = new Map<string, number>()
  const log: SimulatedRequest[] = []
  const timers = new Set<NodeJS.Timeout>()
  const registry = createTokenRegistry()
  const resourceStatuses = new Map<number, number>()
  const now = opts.now ?? Date.now
  let baseUrl: string | undefined
  let closing = false
  let inFlight = 0
  let peakInFlight = 0
  const byPeer = createPeerCounts()
  const peerNames = new WeakMap<Socket, string>()
  const logLimit = opts.logLimit ?? DEFAULT_LOG_LIMIT

  const expectedSecret = (id: string): string | readonly string[] | undefined => {
    const s = opts.secrets
    if (typeof s === 'function') return s(id)
    return s !== undefined && Object.hasOwn(s, id) ? s[id] : undefined
  }
  const secretOk = (id: string, secret: string): boolean =>
    // Plain comparison is fine here: this is a test double, not a place secrets need protecting.
    opts.secrets === undefined
      ? secret !== ''
      : secret !== '' && [expectedSecret(id) ?? []].flat().includes(secret)
  const behaviourFor = (id: string): Behaviour => behaviours.get(id) ?? behaviours.get('*') ?? { mode: 'ok' }

  const delay = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const t = setTimeout(() => {
        timers.delete(t)
        resolve()
      }, ms)
      timers.add(t)
    })

  const peerOf = (socket: Socket): string | undefined => {
    let name = peerNames.get(socket)
    if (name === undefined && opts.peer) {
      name = opts.peer({ address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 })
      if (name !== undefined) peerNames.set(socket, name)
    }
    return name
  }

  async function tokenRequest(
    kind: Kind,
    req: IncomingMessage,
    res: ServerResponse,
    body: string,
  ): Promise<void> {
    const peer = peerOf(req.socket)
    inFlight++
    peakInFlight = Math.max(peakInFlight, inFlight)
    if (peer !== undefined) byPeer.started(peer)
    try {
      await answerToken(kind, req, res, body, peer)
    } finally {
      inFlight--
      if (peer !== undefined) byPeer.ended(peer)
    }
  }

  async function answerToken(
    kind: Kind,
    req: IncomingMessage,
    res: ServerResponse,
    body: string,
    peer: string | undefined,
  ): Promise<void> {
    const parsed =
      kind === 'ims'
        ? parseImsRequest(req.headers['content-type'], body)
        : parseEqpRequest(req.headers.authorization, req.headers['content-type'], body)
    const { id } = parsed
    increment(minted, id)
    const record = (ok: boolean): void => {
      log.push(peer === undefined ? { id, kind, at: now(), ok } : { id, kind, at: now(), ok, peer })
      if (log.length > logLimit) log.shift()
      if (ok) increment(issuedBy, id)
    }

    const b = behaviourFor(id)
    if (b.mode === 'hang') return record(false) // never answered; close() ends the socket
    if (b.latencyMs) await delay(b.latencyMs)
    if (closing) return

    let answer: Answer
    if (b.mode === 'error5xx') {
      answer = errorAnswer(kind, b.status ?? 503, 'server_error', 'Service unavailable')
    } else if (b.mode === 'rate_limited') {
      answer = errorAnswer(kind, 429, 'too_many_requests', 'Too many requests')
    } else if (parsed.problem) {
      answer = parsed.problem
    } else if (b.mode === 'reject' || b.refuse?.includes(parsed.secret) || !secretOk(id, parsed.secret)) {
      answer = rejectAnswer(kind, b.mode === 'reject' ? b.status : undefined)
    } else if (b.mode === 'malformed') {
      answer = malformedAnswer(kind, id, b.malformed ?? 'not_json', defaultLifetime(kind, parsed), now())
    } else {
      const lifetime = opts.lifetime?.(id, now()) ?? b.expiresIn ?? defaultLifetime(kind, parsed)
      answer = grantAnswer(kind, id, lifetime, now())
    }
    const ok = b.mode === 'ok' && answer.status === 200
    if (ok) remember(kind, id, answer)
    record(ok)
    const throttled = b.mode === 'error5xx' || b.mode === 'rate_limited'
    send(res, answer, throttled && b.retryAfter !== undefined ? { 'retry-after': String(b.retryAfter) } : {})
  }

  /** Keeps what the protected resources need to know of a token just issued. */
  function remember(kind: Kind, id: string, answer: Answer): void {
    const body = JSON.parse(answer.body) as {
      access_token?: string
      ust?: string
      mage_id?: string
      expires_in: number
    }
    const token = kind === 'ims' ? body.access_token : body.ust
    if (token === undefined) return
    registry.issue(token, { kind, id, mageId: body.mage_id, expiresAt: now() + body.expires_in * 1000 })
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!
    let body: string
    try {
      body = await readBody(req)
    } catch (err) {
      if (err instanceof BodyTooLarge) return sendJson(res, 413, { error: 'payload_too_large' })
      throw err
    }
    const kind = PATHS[path]
    if (kind !== undefined && req.method === 'POST') return tokenRequest(kind, req, res, body)

    const apiKey = req.headers['x-api-key']
    const resource = resourceAnswer(
      {
        method: req.method ?? 'GET',
        path,
        authorization: req.headers.authorization,
        apiKey: Array.isArray(apiKey) ? apiKey[0] : apiKey,
      },
      registry,
      now(),
      (id) => behaviourFor(id).resource === 'unauthorized',
    )
    if (resource !== undefined) {
      increment(resourceStatuses, resource.answer.status)
      return send(res, resource.answer)
    }

    if (path === '/__sim/stats' && req.method === 'GET') {
      return sendJson(res, 200, { mints: Object.fromEntries(minted), issued: Object.fromEntries(issuedBy) })
    }
    if (path === '/__sim/reset' && req.method === 'POST') {
      sim.reset()
      return sendJson(res, 200, { ok: true })
    }
    if (path === '/__sim/revoke' && req.method === 'POST') {
      let which: { token?: unknown; id?: unknown }
      try {
        which = JSON.parse(body) as { token?: unknown; id?: unknown }
      } catch {
        return sendJson(res, 400, { error: 'body is not JSON' })
      }
      const { token, id } = which ?? {}
      if ((typeof token !== 'string' || token === '') && (typeof id !== 'string' || id === '')) {
        return sendJson(res, 400, { error: 'give "token" (one token) or "id" (every token issued to it)' })
      }
      const revoked = sim.revoke({
        token: typeof token === 'string' ? token : undefined,
        id: typeof id === 'string' ? id : undefined,
      })
      return sendJson(res, 200, { ok: true, revoked })
    }
    if (path === '/__sim/behave' && req.method === 'POST') {
      let json: unknown
      try {
        json = JSON.parse(body)
      } catch {
        return sendJson(res, 400, { error: 'body is not JSON' })
      }
      const parsed = parseBehaveRequest(json)
      if (typeof parsed === 'string') return sendJson(res, 400, { error: parsed })
      sim.behave(parsed.id, parsed.behaviour)
      return sendJson(res, 200, { ok: true, id: parsed.id, behaviour: behaviours.get(parsed.id) })
    }
    sendJson(res, 404, { error: 'not_found' })
  }

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) sendJson(res, 500, { error: 'simulator_error' })
      else res.destroy()
    })
  }
  const server = opts.tls ? createHttpsServer(opts.tls, onRequest) : createServer(onRequest)
  const scheme = opts.tls ? 'https' : 'http'

  const sim: Simulator = {
    listen(port = 0, host = '127.0.0.1') {
      return new Promise((resolve, reject) => {
        if (baseUrl !== undefined) return reject(new Error('simulator already listening'))
        closing = false
        server.once('error', reject)
        server.listen(port, host, () => {
          server.off('error', reject)
          const addr = server.address() as AddressInfo
          const h = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address
          baseUrl = `${scheme}://${h}:${addr.port}`
          resolve(baseUrl)
        })
      })
    },
    close() {
      closing = true
      for (const t of timers) clearTimeout(t)
      timers.clear()
      if (baseUrl === undefined) return Promise.resolve()
      baseUrl = undefined
      return new Promise((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
    },
    get url() {
      if (baseUrl === undefined) throw new Error('simulator is not listening')
      return baseUrl
    },
    behave(id, b) {
      behaviours.set(id, { ...(behaviours.get(id) ?? { mode: 'ok' }), ...b })
    },
    reset() {
      behaviours.clear()
      minted.clear()
      issuedBy.clear()
      resourceStatuses.clear()
      log.length = 0
      peakInFlight = inFlight
      byPeer.reset()
    },
    maxInFlight: (peer) => (peer === undefined ? peakInFlight : byPeer.maxInFlight(peer)),
    peers: () => byPeer.snapshot(),
    revoke: (which) => registry.revoke(which),
    resourceCalls: () => Object.fromEntries(resourceStatuses),
    mints: (id) => count(minted, id),
    issued: (id) => count(issuedBy, id),
    get requests() {
      return log
    },
  }
  return sim
}
