import type { FastifyRequest } from 'fastify'
import type { Client } from '../core/credential.js'

/** The caller's client id once authenticated, else '' (unauthenticated, or refused before that). */
export const clientOf = (request: FastifyRequest): string =>
  (request.client as Client | null | undefined)?.id ?? ''

/** The credential the route names when it is a configured one, else '': never a caller's string. */
export function credentialOf(request: FastifyRequest): string {
  const id = (request.params as { credential?: unknown } | undefined)?.credential
  return typeof id === 'string' && request.server.tokens.has(id) ? id : ''
}

/** Counts an answer of /v1/* by `code` (an error code from the catalogue, or OK). */
export function countAnswer(request: FastifyRequest, code: string): void {
  if (!request.url.startsWith('/v1/')) return
  request.server.metrics.requests.count(clientOf(request), credentialOf(request), code)
}
