import { createServer, type IncomingMessage } from 'node:http'
import { type AddressInfo, connect, type Socket } from 'node:net'

export interface ConnectProxy {
  /** `http://127.0.0.1:<port>`, without credentials. */
  readonly url: string
  /** The same with `user:password@` in it. */
  urlWith(user: string, password: string): string
  /** Every CONNECT target (`host:port`) asked for, in order, whether let through or not. */
  readonly connects: string[]
  /** How many CONNECTs were refused with 407. */
  readonly refused: number
  /** Stops listening and cuts every open tunnel, as a proxy that goes down would. */
  close(): Promise<void>
}

/**
 * A real forward proxy for `https:` upstreams: answers CONNECT by opening a TCP tunnel to the target.
 * With `auth`, a CONNECT without the matching `Proxy-Authorization: Basic` is answered 407.
 */
export async function startConnectProxy(
  opts: { auth?: { user: string; password: string } } = {},
): Promise<ConnectProxy> {
  const connects: string[] = []
  const sockets = new Set<Socket>()
  let refused = 0
  const expected =
    opts.auth && `Basic ${Buffer.from(`${opts.auth.user}:${opts.auth.password}`).toString('base64')}`
  const track = (s: Socket) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    s.on('error', () => s.destroy())
  }
  const server = createServer((_req, res) => res.writeHead(405).end())
  server.on('connection', track)
  server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
    const target = req.url ?? ''
    connects.push(target)
    if (expected !== undefined && req.headers['proxy-authorization'] !== expected) {
      refused++
      client.end(
        'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="test"\r\n' +
          'Content-Length: 0\r\n\r\n',
      )
      return
    }
    const [host, port] = [
      target.slice(0, target.lastIndexOf(':')),
      Number(target.slice(target.lastIndexOf(':') + 1)),
    ]
    const upstream = connect(port, host.replace(/^\[|\]$/g, ''), () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n')
      if (head.length > 0) upstream.write(head)
      upstream.pipe(client)
      client.pipe(upstream)
    })
    track(upstream)
    upstream.on('error', () => client.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n'))
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    urlWith: (user, password) =>
      `http://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}`,
    connects,
    get refused() {
      return refused
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        for (const s of sockets) s.destroy()
      }),
  }
}
