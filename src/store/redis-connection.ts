import type { ConnectionOptions } from 'node:tls'
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis'

interface Endpoint {
  host: string
  port: number
}
interface Auth {
  username?: string
  password?: string
  tls: boolean
}

/** Where the store connects: one Redis by URL, a Sentinel-watched master, or a Cluster. */
export type RedisEndpoints =
  | { mode: 'single'; url: string }
  | ({ mode: 'sentinel'; sentinels: Endpoint[]; master: string; sentinelPassword?: string } & Auth)
  | ({ mode: 'cluster'; nodes: Endpoint[] } & Auth)

export type RedisClient = Redis | Cluster

/**
 * A new client for `endpoints` with the store's connection behaviour (`options`): ioredis's own
 * Sentinel and Cluster support does the failover; nothing here retries by hand.
 */
export function createRedisClient(
  endpoints: RedisEndpoints,
  options: RedisOptions,
  /** TLS settings beyond Node's defaults (a test's own CA); the process uses NODE_EXTRA_CA_CERTS. */
  tls: ConnectionOptions = {},
): RedisClient {
  // After a failover the old master may still answer, demoted to a read-only replica: reconnect
  // (without resending), so Sentinel or the Cluster map leads to the new master.
  const common: RedisOptions = {
    ...options,
    reconnectOnError: (err) => (err.message.startsWith('READONLY') ? 1 : false),
  }
  switch (endpoints.mode) {
    case 'single':
      return new Redis(endpoints.url, endpoints.url.startsWith('rediss:') ? { ...common, tls } : common)
    case 'sentinel':
      return new Redis({
        ...common,
        ...auth(endpoints, tls),
        sentinels: endpoints.sentinels,
        name: endpoints.master,
        ...(endpoints.sentinelPassword !== undefined ? { sentinelPassword: endpoints.sentinelPassword } : {}),
        // Managed Sentinel offerings that use TLS use it for the sentinels and the master alike.
        ...(endpoints.tls ? { enableTLSForSentinelMode: true, sentinelTLS: tls } : {}),
        // The sentinels' answers are bounded too, so a dead sentinel is skipped quickly.
        sentinelCommandTimeout: options.commandTimeout ?? 1000,
        ...(options.retryStrategy ? { sentinelRetryStrategy: options.retryStrategy } : {}),
      })
    case 'cluster': {
      const { enableOfflineQueue, retryStrategy, ...perNode } = common
      const clusterOptions: ClusterOptions = {
        enableOfflineQueue,
        clusterRetryStrategy: retryStrategy ?? null,
        // A slot moving or a replica being promoted: retry the redirection soon, a bounded number of times.
        retryDelayOnFailover: 100,
        retryDelayOnClusterDown: 100,
        maxRedirections: 8,
        slotsRefreshTimeout: options.connectTimeout ?? 2000,
        redisOptions: { ...perNode, ...auth(endpoints, tls) },
        // Seed nodes are reached by the name given, not by an address looked up first: a node's
        // certificate names the host (a managed service's configuration endpoint), never its address.
        ...(endpoints.tls ? { dnsLookup: keepName } : {}),
      }
      return new Cluster(endpoints.nodes, clusterOptions)
    }
  }
}

const keepName: NonNullable<ClusterOptions['dnsLookup']> = (hostname, callback) => callback(null, hostname)

/**
 * The first server a TLS client of `endpoints` shakes hands with, and with which TLS settings:
 * where to look for a certificate problem. Undefined without TLS.
 */
export function firstTlsServer(
  endpoints: RedisEndpoints,
  tls: ConnectionOptions = {},
): { host: string; port: number; tls: ConnectionOptions } | undefined {
  switch (endpoints.mode) {
    case 'single': {
      if (!endpoints.url.startsWith('rediss:')) return undefined
      const u = new URL(endpoints.url)
      // WHATWG keeps IPv6 hosts in brackets; TLS wants the bare address.
      return { host: u.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(u.port || 6379), tls }
    }
    case 'sentinel':
    case 'cluster': {
      const first = endpoints.mode === 'sentinel' ? endpoints.sentinels[0] : endpoints.nodes[0]
      return endpoints.tls && first ? { host: first.host, port: first.port, tls } : undefined
    }
  }
}

function auth(a: Auth, tls: ConnectionOptions): RedisOptions {
  return {
    ...(a.username !== undefined ? { username: a.username } : {}),
    ...(a.password !== undefined ? { password: a.password } : {}),
    ...(a.tls ? { tls } : {}),
  }
}
