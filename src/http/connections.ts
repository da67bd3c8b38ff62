import type { Server, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyBaseLogger } from 'fastify'

/** A caller has this long to send its request line and headers, and its whole request (body ≤ 1 MiB). */
export const HEADERS_TIMEOUT_MS = 10_000
export const REQUEST_TIMEOUT_MS = 10_000
/** How often Node enforces the two bounds above (its default, 30 s, would stretch them to 40 s). */
export const TIMEOUT_CHECK_MS = 1_000
/** Open connections beyond this are refused by Node at accept. */
export const MAX_CONNECTIONS = 10_000
/** A limit episode ends (and the next one is logged) once this share of the limit is free again. */
const RELOG_BELOW = 0.9

/** A complete HTTP answer in the broker's error shape, for a socket no request owns. */
export function rawAnswer(statusCode: number, code: string, error: string, message: string): string {
  const body = JSON.stringify({ statusCode, code, error, message })
  return (
    `HTTP/1.1 ${statusCode} ${error}\r\nContent-Type: application/json; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${body}`
  )
}

const FORBIDDEN = rawAnswer(
  403,
  'FORBIDDEN',
  'Forbidden',
  'the source address is not allowed to call the broker',
)

export interface ConnectionGuardOptions {
  /** Whether a peer address may call the broker (ALLOWED_CIDRS). */
  allowed: (ip: string) => boolean
  /**
   * Judge the peer when the connection opens. Off behind trusted proxies: the peer is then the proxy,
   * and the caller's address is known only from each request's forwarding headers.
   */
  atConnect: boolean
  log: FastifyBaseLogger
}

/**
 * Per connection, never per request: refuses disallowed peers before they can send anything, caps
 * the number of open connections (one log line per episode, not one per refused connection), and
 * keeps the set of open sockets that shutdown needs to close those without a finished request.
 */
export function guardConnections(server: Server, opts: ConnectionGuardOptions): ReadonlySet<Socket> {
  const open = new Set<Socket>()
  server.maxConnections = MAX_CONNECTIONS
  let limited = false
  let refused = 0

  server.on('drop', () => {
    refused++
    if (limited) return
    limited = true
    opts.log.warn(
      { maxConnections: server.maxConnections },
      'open connection limit reached: refusing new connections until some close',
    )
  })

  // Before Node's HTTP parser is attached, so a refused peer costs no parsing at all.
  server.prependListener('connection', (socket: Socket) => {
    if (opts.atConnect && !opts.allowed(socket.remoteAddress ?? '')) {
      socket.end(FORBIDDEN, () => socket.destroy())
      return
    }
    open.add(socket)
    socket.once('close', () => {
      open.delete(socket)
      if (limited && open.size < server.maxConnections * RELOG_BELOW) {
        opts.log.info({ refused }, 'open connections below the limit again')
        limited = false
        refused = 0
      }
    })
  })
  return open
}

/**
 * Whether a connection holds no request that has fully arrived: it sent nothing yet, or is stuck
 * mid-headers or mid-body. Such a connection would hold shutdown until its timeout. Node keeps the
 * response of the request being served on the socket (`_httpMessage`, present since Node 0.x and
 * what its own http module relies on); `res.req.complete` says the whole request was read.
 */
export function awaitingRequest(socket: Socket): boolean {
  const res = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage
  return !res?.req.complete
}
