import type { Socket } from 'node:net'
import type { FastifyError } from 'fastify'
import { rawAnswer } from './connections.js'
import { BadRequest, RequestTimeout, STATUS_TEXT } from './errors.js'

interface ConnectionError extends Error {
  code?: string
}

/** A catalogue error as a complete raw HTTP answer, in the same shape the error handler sends. */
function catalogueAnswer(err: FastifyError): string {
  const statusCode = err.statusCode ?? 400
  return rawAnswer(statusCode, err.code, STATUS_TEXT[statusCode] ?? 'Error', err.message)
}

/**
 * Requests Node refuses before Fastify sees them (header overflow, unparsable HTTP, timeouts)
 * still get the broker's JSON error shape, then the connection is closed.
 */
export function clientErrorHandler(err: ConnectionError, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  if (socket.writable) {
    socket.end(
      catalogueAnswer(
        err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? new RequestTimeout()
          : new BadRequest(
              err.code === 'HPE_HEADER_OVERFLOW'
                ? 'the request headers are too large'
                : 'the request is not valid HTTP',
            ),
      ),
    )
  }
  socket.destroy()
}
