import { Redis } from 'ioredis'

/** One command Redis ran, as MONITOR reports it. */
export interface SeenCommand {
  /** Redis's clock, epoch ms (the same host's clock as the bench's). */
  at: number
  /** The replica whose connection sent it; undefined for another client's or a script's own calls. */
  replica: string | undefined
  /** The command and what it touched, e.g. `hgetall token`, `evalsha lock release`, `time`. */
  label: string
  /** The credential of a key the broker names by it (the key's hash tag). */
  credential: string | undefined
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
  // monitor() opens a connection of its own from these settings; this one never connects.
  const settings = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0 })
  const monitor = await settings.monitor()
  monitor.on('error', () => {
    // A lost monitor ends the counting; what was gathered stands (the phase reports what it saw).
  })
  monitor.on('monitor', (time: string, args: string[], source: string | undefined) => {
    const lua = source === 'lua'
    const port = !lua && source ? Number(source.slice(source.lastIndexOf(':') + 1)) : Number.NaN
    seen.push({
      at: Number(time) * 1000,
      replica: Number.isFinite(port) ? owner(port) : undefined,
      label: label(args),
      credential: /\{([^}]+)\}:/.exec(keyOf(args) ?? '')?.[1],
      lua,
    })
  })
  return {
    async stop() {
      monitor.disconnect()
      settings.disconnect()
      return seen
    },
  }
}

/** The command and the kind of key it touches (the broker's key names end in `}:token`, `}:lock`...). */
const isScript = (cmd: string) => cmd === 'evalsha' || cmd === 'eval'
const keyOf = (args: string[]) => (isScript((args[0] ?? '').toLowerCase()) ? args[3] : args[1])

function label(args: string[]): string {
  const cmd = (args[0] ?? '?').toLowerCase()
  const key = keyOf(args)
  const kind = key === undefined ? '' : keyKind(key)
  // The two lock scripts share the key: renewal passes a TTL after the owner, release does not.
  if (isScript(cmd) && kind === 'lock') return `${cmd} lock ${args.length > 5 ? 'renew' : 'release'}`
  return kind ? `${cmd} ${kind}` : cmd
}

function keyKind(key: string): string {
  const tagged = /\}:(token|lock|brake|forced)$/.exec(key)?.[1]
  if (tagged) return tagged
  if (/token:[^:]+$/.test(key)) return 'legacy token'
  if (key.endsWith('tokens')) return 'channel'
  return ''
}
