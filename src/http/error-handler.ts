import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { FORCED_LIMIT_TEXT, MinTtlUnreachable, MintFailed, TooManyForcedMints } from '../core/failure.js'
import { countAnswer } from './answers.js'
import {
  BadRequest,
  BODY_LIMIT,
  ERROR_CODES,
  InternalError,
  PayloadTooLarge,
  RateLimited,
  RouteNotFound,
  STATUS_TEXT,
  UpstreamRejected,
  UpstreamUnavailable,
} from './errors.js'
import { mintFailedMessage } from './failure.js'

/** Our catalogue's codes: anything else is mapped before it reaches a caller. */
const CATALOGUE = new Set<string>(ERROR_CODES)

/** Maps domain, framework and unexpected errors onto the catalogue. */
function toCatalogue(err: unknown): FastifyError {
  if (err instanceof MintFailed) {
    const message = mintFailedMessage(err)
    return err.kind === 'rejected' ? new UpstreamRejected(message) : new UpstreamUnavailable(message)
  }
  if (err instanceof TooManyForcedMints) {
    return new RateLimited(
      `too many forced refreshes of credential "${err.credential}" (at most ${FORCED_LIMIT_TEXT}); retry after Retry-After`,
    )
  }
  if (err instanceof MinTtlUnreachable) return new BadRequest(`min_ttl cannot be met: ${err.message}`)
  const e = err as FastifyError
  if (CATALOGUE.has(e.code)) return e
  if (e.validation) return new BadRequest(describeValidation(e))
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new PayloadTooLarge(BODY_LIMIT)
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new BadRequest('the body must be JSON (Content-Type: application/json)')
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new BadRequest('the body is not valid JSON')
  }
  if (e.statusCode === 413) return new PayloadTooLarge(BODY_LIMIT)
  if (
    e instanceof SyntaxError ||
    (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500)
  ) {
    return new BadRequest('the request is malformed')
  }
  return new InternalError()
}

function describeValidation(e: FastifyError): string {
  const first = e.validation?.[0]
  if (!first) return 'the request is malformed'
  const where = e.validationContext === 'querystring' ? 'query' : (e.validationContext ?? 'request')
  const path = first.instancePath.replace(/^\//, '').replaceAll('/', '.')
  const name =
    path || (first.params as { missingProperty?: string; additionalProperty?: string }).additionalProperty
  // Messages come from the schema (types, bounds, patterns), never from the input itself.
  return `${where}${name ? ` ${name}` : ''} ${first.message ?? 'is invalid'}`
}

export function errorHandler(
  this: FastifyInstance,
  err: unknown,
  request: FastifyRequest,
  reply: FastifyReply,
) {
  const mapped = toCatalogue(err)
  const statusCode = mapped.statusCode ?? 500
  if (statusCode >= 500 && !(err instanceof MintFailed)) {
    request.log.error({ err }, 'request failed')
  } else {
    request.log.debug({ code: mapped.code, statusCode }, 'request refused')
  }
  if ((err instanceof MintFailed && err.kind === 'unavailable') || err instanceof TooManyForcedMints) {
    reply.header('retry-after', String(Math.max(1, Math.ceil(err.retryAfterMs / 1000))))
  }
  reply.header('cache-control', 'no-store')
  countAnswer(request, mapped.code)
  return reply.code(statusCode).send({
    statusCode,
    code: mapped.code,
    error: STATUS_TEXT[statusCode] ?? 'Error',
    message: statusCode === 500 ? 'Internal Server Error' : mapped.message,
  })
}

export function notFoundHandler(request: FastifyRequest, reply: FastifyReply) {
  // The raw URL could carry anything: name the method and a bounded, printable path only.
  const path = request.url
    .split('?')[0]!
    .replace(/[^\x20-\x7e]/g, '?')
    .slice(0, 100)
  return errorHandler.call(request.server, new RouteNotFound(request.method, path), request, reply)
}
