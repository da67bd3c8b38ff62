import type { Socket } from 'node:net'

interface ConnectionError extends Error {
  code?: string
}

/**
 * Requests Node refuses before Fastify sees them (header overflow, unparsable HTTP, timeouts)
 * still get the broker's JSON error shape, then the connection is closed.
 */
export function clientErrorHandler(err: ConnectionError, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const timeout = err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
  const statusCode = timeout ? 408 : 400
  const body = JSON.stringify({
    statusCode,
    code: timeout ? 'REQUEST_TIMEOUT' : 'BAD_REQUEST',
    error: timeout ? 'Request Timeout' : 'Bad Request',
    message:
      err.code === 'HPE_HEADER_OVERFLOW'
        ? 'the request headers are too large'
        : timeout
          ? 'the request took too long to arrive'
          : 'the request is not valid HTTP',
  })
  if (socket.writable) {
    socket.end(
      `HTTP/1.1 ${statusCode} ${timeout ? 'Request Timeout' : 'Bad Request'}\r\n` +
        `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `Cache-Control: no-store\r\nConnection: close\r\n\r\n${body}`,
    )
  }
  socket.destroy()
}
