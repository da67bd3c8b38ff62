import net from 'node:net'

/**
 * A TCP proxy in front of a Redis, so a test can take "Redis" down and bring it back mid-test,
 * whatever Redis the run found (a container, a local redis-server or REDIS_URL). It also records
 * the commands clients send, so a test can check which key names a store touches.
 */
export interface RedisProxy {
  /** The Redis URL with host:port replaced by the proxy's (scheme, credentials and db kept). */
  readonly url: string
  /** Commands seen from clients, each as its arguments (command name first). */
  readonly commands: string[][]
  /**
   * Round trips so far: each burst a client sends after Redis last answered it counts once (a
   * pipeline is one, however many commands it carries).
   */
  roundTrips(): number
  /** Goes down: destroys every connection and refuses new ones. */
  stop(): Promise<void>
  /** Comes back on the same port. */
  start(): Promise<void>
  close(): Promise<void>
}

export async function startRedisProxy(redisUrl: string): Promise<RedisProxy> {
  const target = new URL(redisUrl)
  const targetPort = Number(target.port || 6379)
  const targetHost = target.hostname.replace(/^\[|\]$/g, '')
  const sockets = new Set<net.Socket>()
  const commands: string[][] = []
  let trips = 0

  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, targetHost)
    sockets.add(client).add(upstream)
    const parse = respParser((cmd) => commands.push(cmd))
    let answered = true
    client.on('data', (d: Buffer) => {
      if (answered) trips++
      answered = false
      parse(d)
      upstream.write(d)
    })
    upstream.on('data', () => {
      answered = true
    })
    upstream.pipe(client)
    const end = () => {
      client.destroy()
      upstream.destroy()
      sockets.delete(client)
      sockets.delete(upstream)
    }
    for (const s of [client, upstream]) {
      s.on('error', end)
      s.on('close', end)
    }
  })

  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject)
        resolve((server.address() as net.AddressInfo).port)
      })
    })
  const stopListening = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy()
      sockets.clear()
      if (!server.listening) return resolve()
      server.close(() => resolve())
    })

  const port = await listen(0)
  const proxied = new URL(redisUrl)
  proxied.hostname = '127.0.0.1'
  proxied.port = String(port)

  return {
    url: proxied.toString(),
    commands,
    roundTrips: () => trips,
    stop: stopListening,
    async start() {
      if (!server.listening) await listen(port)
    },
    close: stopListening,
  }
}

/** Splits a client's byte stream into commands (RESP arrays of bulk strings, as ioredis sends). */
function respParser(onCommand: (args: string[]) => void): (chunk: Buffer) => void {
  let buf = Buffer.alloc(0)
  return (chunk) => {
    buf = Buffer.concat([buf, chunk])
    for (;;) {
      const parsed = parseArray(buf)
      if (!parsed) return
      onCommand(parsed.args)
      buf = buf.subarray(parsed.end)
    }
  }
}

function parseArray(buf: Buffer): { args: string[]; end: number } | undefined {
  const line = (from: number) => {
    const eol = buf.indexOf('\r\n', from)
    return eol < 0 ? undefined : { text: buf.toString('latin1', from, eol), next: eol + 2 }
  }
  const head = line(0)
  if (!head?.text.startsWith('*')) return undefined
  const args: string[] = []
  let pos = head.next
  for (let i = 0; i < Number(head.text.slice(1)); i++) {
    const len = line(pos)
    if (!len) return undefined
    const n = Number(len.text.slice(1))
    if (buf.length < len.next + n + 2) return undefined
    args.push(buf.toString('utf8', len.next, len.next + n))
    pos = len.next + n + 2
  }
  return { args, end: pos }
}
