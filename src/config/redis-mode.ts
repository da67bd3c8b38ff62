import { ConfigError } from './errors.js'

export interface HostPort {
  host: string
  port: number
}

/** Credentials and TLS for the Sentinel and Cluster modes (a `REDIS_URL` carries its own). */
export interface RedisAuth {
  username?: string
  password?: string
  tls: boolean
}

/** Where the shared store lives, as the environment names it. */
export type RedisTarget =
  | { mode: 'single'; url: string }
  | ({ mode: 'sentinel'; sentinels: HostPort[]; master: string; sentinelPassword?: string } & RedisAuth)
  | ({ mode: 'cluster'; nodes: HostPort[] } & RedisAuth)

export interface RedisModeEnv {
  REDIS_URL?: string
  REDIS_SENTINELS?: string
  REDIS_SENTINEL_MASTER: string
  REDIS_CLUSTER_NODES?: string
  REDIS_USERNAME?: string
  REDIS_PASSWORD?: string
  REDIS_TLS: boolean
  REDIS_SENTINEL_PASSWORD?: string
}

const MODES = ['REDIS_URL', 'REDIS_SENTINELS', 'REDIS_CLUSTER_NODES'] as const

/**
 * The Redis mode the environment asks for, or undefined (in-memory store). More than one mode set
 * is a start-up error naming them; a bad `host:port` list names its variable, never a password.
 */
export function redisTarget(env: RedisModeEnv): RedisTarget | undefined {
  const set = MODES.filter((name) => env[name] !== undefined)
  if (set.length > 1) throw new ConfigError(`set at most one of ${set.join(', ')} (they are Redis modes)`)
  const auth: RedisAuth = {
    tls: env.REDIS_TLS,
    ...(env.REDIS_USERNAME !== undefined ? { username: env.REDIS_USERNAME } : {}),
    ...(env.REDIS_PASSWORD !== undefined ? { password: env.REDIS_PASSWORD } : {}),
  }
  if (env.REDIS_URL !== undefined) return { mode: 'single', url: env.REDIS_URL }
  if (env.REDIS_SENTINELS !== undefined) {
    return {
      mode: 'sentinel',
      sentinels: hostPorts('REDIS_SENTINELS', env.REDIS_SENTINELS, 26379),
      master: env.REDIS_SENTINEL_MASTER,
      ...(env.REDIS_SENTINEL_PASSWORD !== undefined ? { sentinelPassword: env.REDIS_SENTINEL_PASSWORD } : {}),
      ...auth,
    }
  }
  if (env.REDIS_CLUSTER_NODES !== undefined) {
    return {
      mode: 'cluster',
      nodes: hostPorts('REDIS_CLUSTER_NODES', env.REDIS_CLUSTER_NODES, 6379),
      ...auth,
    }
  }
  return undefined
}

/** Redis variables that are set but have no effect, and why: a start-up warning, names only. */
export interface IgnoredRedisSettings {
  variables: string[]
  reason: string
}

const AUTH = ['REDIS_USERNAME', 'REDIS_PASSWORD', 'REDIS_TLS'] as const
const SENTINEL = ['REDIS_SENTINEL_MASTER', 'REDIS_SENTINEL_PASSWORD'] as const

/**
 * The Redis variables of `env` (the raw environment: a variable with a default counts only when set)
 * that the mode in use never reads. REDIS_URL carries its own user, password and scheme, the
 * Sentinel settings need REDIS_SENTINELS, and without a mode nothing reaches Redis. Ignoring them
 * stays (configurations that set them keep starting); the warning tells the operator.
 */
export function ignoredRedisSettings(
  env: Readonly<Record<string, string | undefined>>,
): IgnoredRedisSettings[] {
  const set = (names: readonly string[]) => names.filter((name) => env[name] !== undefined)
  const modes = set(MODES)
  // Several modes stop the start with their own error.
  if (modes.length > 1) return []
  const found: IgnoredRedisSettings[] = []
  const add = (variables: string[], reason: string) => {
    if (variables.length > 0) found.push({ variables, reason })
  }
  const [mode] = modes
  if (mode === undefined) {
    add(
      set([...AUTH, ...SENTINEL]),
      'no Redis mode is set (REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES): the store is in memory',
    )
    return found
  }
  if (mode === 'REDIS_URL') {
    add(set(AUTH), 'REDIS_URL carries its own user, password and scheme (rediss:// for TLS)')
  }
  if (mode !== 'REDIS_SENTINELS') add(set(SENTINEL), 'they apply only with REDIS_SENTINELS')
  return found
}

/** `host:port,host:port`; IPv6 hosts in brackets (`[::1]:6379`); the port defaults to `defaultPort`. */
export function hostPorts(name: string, list: string, defaultPort: number): HostPort[] {
  const out: HostPort[] = []
  for (const raw of list.split(',')) {
    const item = raw.trim()
    const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9._-]+))(?::(\d{1,5}))?$/.exec(item)
    const port = m?.[3] === undefined ? defaultPort : Number(m[3])
    if (!m || port < 1 || port > 65535) {
      throw new ConfigError(
        `${name} must be a comma-separated list of host:port (item ${out.length + 1} is not)`,
      )
    }
    out.push({ host: m[1] ?? m[2] ?? '', port })
  }
  return out
}

/** The target for log lines: hosts and mode, never a password. */
export function describeTarget(target: RedisTarget): string {
  const list = (hs: HostPort[]) => hs.map((h) => `${h.host}:${h.port}`).join(',')
  switch (target.mode) {
    case 'single': {
      try {
        const u = new URL(target.url)
        if (u.password) u.password = '***'
        return u.toString()
      } catch {
        return '<unparseable url>'
      }
    }
    case 'sentinel':
      return `sentinel ${target.master}@${list(target.sentinels)}${target.tls ? ' (tls)' : ''}`
    case 'cluster':
      return `cluster ${list(target.nodes)}${target.tls ? ' (tls)' : ''}`
  }
}
