import type { Dispatcher } from 'undici'
import { EgressProxyError, transportCode } from './transport-errors.js'
import { Agent, EnvHttpProxyAgent, Pool } from './undici.js'

/** Where upstream requests go through, as HTTPS_PROXY, HTTP_PROXY and NO_PROXY say (config/proxy.ts). */
export interface EgressProxy {
  readonly httpsProxy?: string
  readonly httpProxy?: string
  readonly noProxy?: string
}

export interface DispatcherOptions {
  /** Sockets per upstream origin. Token traffic is a few requests per cycle, so a handful is plenty. */
  readonly connections?: number
  /**
   * Token requests let in flight at once per origin (UPSTREAM_CONCURRENCY): the pool keeps at least
   * that many sockets per origin, so no request the limiter let through waits for a socket.
   */
  readonly concurrency?: number
  readonly keepAliveTimeoutMs?: number
  readonly connectTimeoutMs?: number
  /** Unset or without proxy URLs: upstreams are called directly. */
  readonly proxy?: EgressProxy
  /**
   * Extra CA certificates (PEM) trusted for upstream TLS, besides Node's defaults. The process gets
   * them from NODE_EXTRA_CA_CERTS; this is for tests that cannot set it on the runner.
   */
  readonly ca?: string
}

/**
 * The one connection pool for all upstream calls. Keep-alive spares a TLS handshake when a retry or
 * another credential on the same host follows soon; undici still honours a shorter server keep-alive hint.
 * With a proxy, undici's own EnvHttpProxyAgent routes each origin (NO_PROXY matching included) and
 * tunnels `https:` through CONNECT; the same pool settings apply to the tunnelled connections.
 */
export function createDispatcher(opts: DispatcherOptions = {}): Dispatcher {
  const keepAlive = opts.keepAliveTimeoutMs ?? 30_000
  const connectTimeout = opts.connectTimeoutMs ?? 10_000
  const tls = { timeout: connectTimeout, ...(opts.ca === undefined ? {} : { ca: opts.ca }) }
  const pool = {
    connections: Math.max(opts.connections ?? 8, opts.concurrency ?? 1),
    pipelining: 1,
    keepAliveTimeout: keepAlive,
    // A server hint may shorten keep-alive but never stretch it past ours.
    keepAliveMaxTimeout: keepAlive,
  }
  const { httpsProxy, httpProxy, noProxy } = opts.proxy ?? {}
  if (httpsProxy === undefined && httpProxy === undefined) return new Agent({ ...pool, connect: tls })
  return new EnvHttpProxyAgent({
    ...pool,
    connect: tls,
    // Empty strings, never undefined: undici would otherwise fall back to process.env, and the
    // broker's environment is the cleaned copy it was given.
    httpsProxy: httpsProxy ?? httpProxy ?? '',
    httpProxy: httpProxy ?? '',
    noProxy: noProxy ?? '',
    requestTls: tls,
    proxyTls: { timeout: connectTimeout },
    clientFactory: proxyClient(connectTimeout),
  })
}

type Connect = (options: Dispatcher.ConnectOptions) => Promise<Dispatcher.ConnectData>

/**
 * The connection to the proxy itself. Its CONNECT failures are told apart from the upstream's own,
 * so that a credential's last_error names the proxy (by host and port: the URL's credentials never
 * reach a message).
 */
const proxyClient =
  (connectTimeoutMs: number) =>
  (origin: URL, options: object): Dispatcher => {
    // The proxy's answer to CONNECT is part of connecting: bounded as connecting is, not by undici's
    // five-minute default for headers.
    const client = new Pool(origin, { ...options, headersTimeout: connectTimeoutMs })
    const where = origin.host
    const connect = client.connect.bind(client) as Connect
    const tunnel: Connect = async (params) => {
      let data: Dispatcher.ConnectData
      try {
        data = await connect(params)
      } catch (err) {
        // A timeout or a shutdown is the request's own story, not the proxy's.
        if (params.signal instanceof AbortSignal && params.signal.aborted) throw err
        throw new EgressProxyError(where, transportCode(err))
      }
      if (data.statusCode !== 200) {
        data.socket.on('error', () => {}).destroy()
        throw new EgressProxyError(where, `HTTP ${data.statusCode}`)
      }
      return data
    }
    return Object.assign(client, { connect: tunnel })
  }
