import createError from '@fastify/error'

/**
 * Every error a caller can see: a stable code and status each. The central error handler
 * (error-handler.ts) maps anything else onto these, so the spec's error shape is the only shape.
 */
export const BadRequest = createError('BAD_REQUEST', '%s', 400)
export const Unauthenticated = createError(
  'UNAUTHENTICATED',
  'Send a valid client key as "Authorization: Bearer <key>"',
  401,
)
export const Forbidden = createError('FORBIDDEN', '%s', 403)
export const CredentialNotFound = createError('CREDENTIAL_NOT_FOUND', 'No credential is named "%s"', 404)
export const RouteNotFound = createError('NOT_FOUND', 'No route %s %s', 404)
export const PayloadTooLarge = createError(
  'PAYLOAD_TOO_LARGE',
  'The request body is larger than %s bytes',
  413,
)
export const UpstreamRejected = createError('UPSTREAM_REJECTED', '%s', 502)
export const UpstreamUnavailable = createError('UPSTREAM_UNAVAILABLE', '%s', 503)
export const InternalError = createError('INTERNAL_ERROR', 'Internal Server Error', 500)

export const BODY_LIMIT = 1024 * 1024
