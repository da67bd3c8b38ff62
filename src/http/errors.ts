import createError from '@fastify/error'

/**
 * Every error a caller can see: a stable code and status each. The central error handler
 * (error-handler.ts) maps anything else onto these, so the documented error shape is the only shape.
 */
const SEND_A_KEY = 'Send a valid client key as "Authorization: Bearer <key>"'
const SEND_A_CERTIFICATE =
  'Present a client certificate signed by the client CA (TLS_CLIENT_CA_FILE), and a valid client key'
const TOO_LARGE = 'The request body is larger than %s bytes'

export const BadRequest = createError('BAD_REQUEST', '%s', 400)
export const Unauthenticated = createError('UNAUTHENTICATED', SEND_A_KEY, 401)
export const NoClientCertificate = createError('UNAUTHENTICATED', SEND_A_CERTIFICATE, 401)
export const Forbidden = createError('FORBIDDEN', '%s', 403)
export const CredentialNotFound = createError('CREDENTIAL_NOT_FOUND', 'No credential is named "%s"', 404)
export const RouteNotFound = createError('NOT_FOUND', 'No route %s %s', 404)
export const PayloadTooLarge = createError('PAYLOAD_TOO_LARGE', TOO_LARGE, 413)
/** Sent on the raw socket (client-error.ts): Node's request timeout passed before the request arrived. */
export const RequestTimeout = createError('REQUEST_TIMEOUT', 'The request took too long to arrive', 408)
export const RateLimited = createError('RATE_LIMITED', '%s', 429)
export const UpstreamRejected = createError('UPSTREAM_REJECTED', '%s', 502)
export const UpstreamUnavailable = createError('UPSTREAM_UNAVAILABLE', '%s', 503)
export const InternalError = createError('INTERNAL_ERROR', 'Internal Server Error', 500)

export const BODY_LIMIT = 1024 * 1024

/** Every code a caller can see: the catalogue above, as the error schema documents it. */
export const ERROR_CODES = [
  'BAD_REQUEST',
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'CREDENTIAL_NOT_FOUND',
  'NOT_FOUND',
  'REQUEST_TIMEOUT',
  'PAYLOAD_TOO_LARGE',
  'RATE_LIMITED',
  'UPSTREAM_REJECTED',
  'UPSTREAM_UNAVAILABLE',
  'INTERNAL_ERROR',
] as const

/** The reason phrase sent as `error` for each status the broker answers with. */
export const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  413: 'Payload Too Large',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
}
