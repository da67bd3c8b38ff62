import type { Socket } from 'node:net'
import { rawAnswer } from './connections.js'

interface ConnectionError extends Error {
  code?: string
}

/**
 * Requests Node refuses before Fastify sees them (header overflow, unparsable HTTP, timeouts)
 * still get the broker's JSON error shape, then the connection is closed.
 */
export function clientErrorHandler(err: ConnectionError, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  if (socket.writable) {
    socket.end(
      err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? rawAnswer(408, 'REQUEST_TIMEOUT', 'Request Timeout', 'the request took too long to arrive')
        : rawAnswer(
            400,
            'BAD_REQUEST',
            'Bad Request',
            err.code === 'HPE_HEADER_OVERFLOW'
              ? 'the request headers are too large'
              : 'the request is not valid HTTP',
          ),
    )
  }
  socket.destroy()
}
