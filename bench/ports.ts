import { readdirSync, readFileSync, readlinkSync } from 'node:fs'

/**
 * Which of the bench's broker processes owns a local TCP port, so a connection seen from the other
 * end (Redis's client list and MONITOR, the simulator's remote port) is put down to its replica.
 * A process's sockets are the `socket:[inode]` links in /proc/<pid>/fd; /proc/net/tcp and tcp6 give
 * each inode's local port. Linux only; read again whenever a port is not known yet (a new connection).
 */
export interface PortOwners {
  add(name: string, pid: number): void
  /** The name given with add() of the process whose socket has this local port, if any. */
  owner(port: number): string | undefined
}

/** A port nobody owned is not looked up again for this long (the bench's own connections). */
const NEGATIVE_MS = 1000

export function createPortOwners(): PortOwners {
  const processes = new Map<number, string>()
  let byPort = new Map<number, string>()
  const unknownAt = new Map<number, number>()

  const scan = () => {
    const portOf = localPorts()
    const next = new Map<number, string>()
    for (const [pid, name] of processes) {
      for (const inode of socketInodes(pid)) {
        const port = portOf.get(inode)
        if (port !== undefined) next.set(port, name)
      }
    }
    byPort = next
  }

  return {
    add(name, pid) {
      processes.set(pid, name)
    },
    owner(port) {
      const known = byPort.get(port)
      if (known !== undefined) return known
      const at = unknownAt.get(port)
      if (at !== undefined && performance.now() - at < NEGATIVE_MS) return undefined
      scan()
      const found = byPort.get(port)
      if (found === undefined) unknownAt.set(port, performance.now())
      else unknownAt.delete(port)
      return found
    },
  }
}

function socketInodes(pid: number): string[] {
  let fds: string[]
  try {
    fds = readdirSync(`/proc/${pid}/fd`)
  } catch {
    return [] // the process has ended
  }
  const inodes: string[] = []
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))
      if (m) inodes.push(m[1]!)
    } catch {
      // closed meanwhile
    }
  }
  return inodes
}

/** inode -> local port of every TCP socket in this network namespace. */
function localPorts(): Map<string, number> {
  const ports = new Map<string, number>()
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch {
      continue
    }
    // "sl local_address rem_address st ... uid timeout inode": the address is hex IP:hex port.
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/)
      const local = f[1]
      const inode = f[9]
      if (local === undefined || inode === undefined) continue
      ports.set(inode, Number.parseInt(local.slice(local.lastIndexOf(':') + 1), 16))
    }
  }
  return ports
}
