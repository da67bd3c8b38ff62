import { Redis } from 'ioredis'

/** One command Redis ran, as MONITOR reports it. */
export interface SeenCommand {
  /** Redis's clock, epoch ms (the same host's clock as the bench's). */
  at: number
  /** The replica whose connection sent it; undefined for another client's or a script's own calls. */
  replica: string | undefined
  /** The command and what it touched, e.g. `hgetall token`, `evalsha lock release`, `time`. */
  label: string
  /** Run by a script (EVALSHA) rather than sent by a client: not counted as the client's commands. */
  lua: boolean
}

export interface Monitor {
  /** Ends the MONITOR connection; gives every command seen since start. */
  stop(): Promise<SeenCommand[]>
}

/**
 * Watches every command Redis runs (MONITOR) and puts each down to the replica that sent it, by the
 * client's port (`owner`). Redis 7.0 keeps no per-client command count in CLIENT LIST, so this is
 * the way to count per replica; MONITOR costs Redis some CPU, the same for every replica.
 */
export async function monitorRedis(
  url: string,
  owner: (port: number) => string | undefined,
): Promise<Monitor> {
  const seen: SeenCommand[] = []
  const conn = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false })
  conn.on('error', () => {
    // The monitor's own errors end it; counts gathered so far stand.
  })
  await conn.connect()
  const monitor = await conn.monitor()
  monitor.on('monitor', (time: string, args: string[], source: string | undefined) => {
    const lua = source === 'lua'
    const port = !lua && source ? Number(source.slice(source.lastIndexOf(':') + 1)) : Number.NaN
    seen.push({
      at: Number(time) * 1000,
      replica: Number.isFinite(port) ? owner(port) : undefined,
      label: label(args),
      lua,
    })
  })
  return {
    async stop() {
      monitor.disconnect()
      conn.disconnect()
      return seen
    },
  }
}

/** The command and the kind of key it touches (the broker's key names end in `}:token`, `}:lock`...). */
function label(args: string[]): string {
  const cmd = (args[0] ?? '?').toLowerCase()
  const isScript = cmd === 'evalsha' || cmd === 'eval'
  const key = isScript ? args[3] : args[1]
  const kind = key === undefined ? '' : keyKind(key)
  // The two lock scripts share the key: renewal passes a TTL after the owner, release does not.
  if (isScript && kind === 'lock') return `${cmd} lock ${args.length > 5 ? 'renew' : 'release'}`
  return kind ? `${cmd} ${kind}` : cmd
}

function keyKind(key: string): string {
  const tagged = /\}:(token|lock|brake|forced)$/.exec(key)?.[1]
  if (tagged) return tagged
  if (/token:[^:]+$/.test(key)) return 'legacy token'
  if (key.endsWith('tokens')) return 'channel'
  return ''
}
