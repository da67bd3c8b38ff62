import { type TSchema, Type } from '@sinclair/typebox'
import { CREDENTIAL_ID_PATTERN } from '../core/credential.js'
import { FORCED_LIMIT_TEXT } from '../core/failure.js'
import { ERROR_CODES, STATUS_TEXT } from './errors.js'

/**
 * The routes' schemas: what requests are validated against, what answers are serialised through,
 * and (through @fastify/swagger, `npm run openapi`) what openapi.yaml documents. Descriptions here
 * are the API's documentation.
 */

/** One of a few strings. `enum`, not `const`: a serialiser writes `const` whatever the value is. */
const oneOf = <T extends string>(values: readonly T[], options: object = {}) =>
  Type.Unsafe<T>({ type: 'string', enum: [...values], ...options })

export const ErrorBody = Type.Object(
  {
    statusCode: Type.Integer({ description: 'Same as the HTTP status.' }),
    code: oneOf(ERROR_CODES, {
      description:
        'A stable code for programs to branch on. `NOT_FOUND` is for an unknown path or method. ' +
        '`CREDENTIAL_NOT_FOUND` is for an unknown credential id.',
    }),
    error: Type.String({ description: 'The HTTP reason phrase, e.g. `Forbidden`.' }),
    message: Type.String({ description: 'For humans. It never contains a secret, a client key or a token.' }),
  },
  { $id: 'Error', additionalProperties: false },
)

const CACHE_CONTROL = {
  'Cache-Control': {
    type: 'string',
    enum: ['no-store'],
    description: 'Tokens, error bodies and readiness answers must not be cached.',
  },
}
const RETRY_AFTER = {
  'Retry-After': {
    type: 'integer',
    minimum: 1,
    description:
      'Seconds until the broker will try Adobe again for this credential (503), or until a forced refresh is allowed again (429).',
  },
}

/** Each error a route can answer: its code, and what it means there. */
const ERRORS: Record<number, { code: (typeof ERROR_CODES)[number]; description: string }> = {
  400: {
    code: 'BAD_REQUEST',
    description: 'A malformed parameter, query or body, or a `min_ttl` that no token Adobe grants can meet',
  },
  401: { code: 'UNAUTHENTICATED', description: 'No client key was sent, or the key is unknown' },
  403: {
    code: 'FORBIDDEN',
    description:
      'The source address is outside `ALLOWED_CIDRS` (any route), or the client may not use this credential',
  },
  404: {
    code: 'CREDENTIAL_NOT_FOUND',
    description:
      "No credential has this id. This is checked after the client key and before the client's credential list.",
  },
  413: { code: 'PAYLOAD_TOO_LARGE', description: 'The request body is larger than 1 MiB' },
  429: {
    code: 'RATE_LIMITED',
    description:
      `More forced refreshes of this credential than the limit of ${FORCED_LIMIT_TEXT}, counted across the whole fleet ` +
      '(a refresh naming the current token as rejected). Retry after the `Retry-After` delay.',
  },
  500: {
    code: 'INTERNAL_ERROR',
    description: 'An unexpected failure inside the broker. The message never gives details.',
  },
  502: {
    code: 'UPSTREAM_REJECTED',
    description:
      "Adobe refused the credential's secret (400, 401 or 403 from IMS or EQP). After a refusal the broker " +
      'does not ask Adobe again for that credential for 30 s, no matter how often callers ask.',
  },
  503: {
    code: 'UPSTREAM_UNAVAILABLE',
    description:
      'No usable token is held and Adobe is failing (timeouts, 5xx, 429 or a malformed answer), or the ' +
      'broker is shutting down. Retry after the `Retry-After` delay.',
  },
}

/** Per-status error responses for a route, all in the one error shape, with their headers. */
export const errors = (...statuses: (keyof typeof ERRORS)[]) =>
  Object.fromEntries(
    statuses.map((status) => {
      const { code, description } = ERRORS[status]!
      return [
        status,
        {
          description,
          headers: status === 503 || status === 429 ? { ...CACHE_CONTROL, ...RETRY_AFTER } : CACHE_CONTROL,
          allOf: [
            Type.Ref('Error'),
            Type.Object({
              statusCode: Type.Unsafe({ type: 'integer', enum: [status] }),
              code: oneOf([code]),
              error: oneOf([STATUS_TEXT[status]!]),
            }),
          ],
        },
      ]
    }),
  ) as unknown as Record<number, TSchema>

const CredentialId = Type.String({
  pattern: CREDENTIAL_ID_PATTERN,
  description: 'Credential id, as named in the configuration file.',
  examples: ['adobe-ims'],
})

export const CredentialParams = Type.Object({ credential: CredentialId })

export const TokenQuery = Type.Object(
  {
    min_ttl: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 86_400,
        description:
          'How many seconds the returned token must still be valid for. If omitted, the default is 60 s or ' +
          "10 % of the token's lifetime, whichever is smaller. Any query parameter other than `min_ttl` is " +
          'refused with 400.',
      }),
    ),
  },
  { additionalProperties: false },
)

export const RefreshBody = Type.Union(
  [
    Type.Object(
      {
        rejected_token: Type.Optional(
          Type.String({
            minLength: 1,
            maxLength: 16_384,
            description:
              'The token that Adobe just refused. A new token is minted only if this is still the token the ' +
              'broker holds.',
          }),
        ),
      },
      { additionalProperties: false },
    ),
    Type.Null(),
  ],
  { description: 'Optional: no body, an empty body, `{}` and `null` all mean "no options".' },
)

const tokenFields = {
  token_type: Type.String({ examples: ['bearer'] }),
  access_token: Type.String(),
  expires_at: Type.String({ format: 'date-time', description: 'When the token expires (UTC).' }),
  expires_in: Type.Integer({ minimum: 0, description: 'Whole seconds left at the moment of the answer.' }),
}
const Authorization = Type.String({ pattern: '^Bearer .+' })

const ImsToken = Type.Object(
  {
    credential: CredentialId,
    type: oneOf(['ims'] as const),
    ...tokenFields,
    headers: Type.Object(
      {
        Authorization,
        'X-API-Key': Type.String({ description: "The credential's IMS client id." }),
      },
      { additionalProperties: false, description: 'What to send to Adobe with this token.' },
    ),
  },
  { additionalProperties: false, description: 'An Adobe IMS access token. Send both `headers` to Adobe.' },
)

const EqpToken = Type.Object(
  {
    credential: CredentialId,
    type: oneOf(['eqp'] as const),
    ...tokenFields,
    mage_id: Type.String({ description: 'The Marketplace account id that EQP returned with the token.' }),
    headers: Type.Object(
      { Authorization },
      { additionalProperties: false, description: 'What to send to Adobe with this token.' },
    ),
  },
  {
    additionalProperties: false,
    description:
      'An Adobe Commerce Marketplace (EQP) session token (the `ust`). Send only `Authorization` to Adobe.',
  },
)

export const TokenResponse = Type.Union([ImsToken, EqpToken], {
  description: 'A token, with the headers a caller must send to Adobe',
  headers: CACHE_CONTROL,
})

const CredentialType = oneOf(['ims', 'eqp'] as const, {
  description: '`ims`: Adobe IMS client credentials. `eqp`: Adobe Commerce Marketplace (EQP) session token.',
})
const CredentialState = oneOf(['pending', 'ok', 'failing'] as const, {
  description:
    '`pending`: not tried yet. `ok`: a valid token is held and the last attempt succeeded. `failing`: the ' +
    'last attempt failed, or no valid token is held.',
})
const Instant = Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
  description: 'A moment (ISO 8601, UTC), or null when there is none yet',
})
const LastError = Type.Union(
  [
    Type.Object(
      {
        code: Type.Unsafe<string>({ type: 'string', enum: ['UPSTREAM_REJECTED', 'UPSTREAM_UNAVAILABLE'] }),
        message: Type.String(),
        at: Type.String({ format: 'date-time' }),
      },
      { additionalProperties: false },
    ),
    Type.Null(),
  ],
  { description: 'The last failure to get a token, or null when the last attempt succeeded' },
)

export const CredentialsResponse = Type.Object(
  {
    credentials: Type.Array(
      Type.Object(
        {
          id: CredentialId,
          type: CredentialType,
          environment: oneOf(['production', 'stage', 'sandbox'] as const, {
            description: '`production` or `stage` for ims; `production` or `sandbox` for eqp.',
          }),
          state: CredentialState,
          expires_at: Instant,
          refreshed_at: Instant,
          next_refresh_at: Instant,
          last_error: LastError,
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false, description: "The client's credentials" },
)

export const HealthResponse = Type.Object(
  { status: oneOf(['ok'] as const) },
  { additionalProperties: false, description: 'The process is alive' },
)

const readiness = <T extends string>(statuses: readonly T[], description: string) =>
  Type.Object(
    {
      status: oneOf(statuses),
      store: Type.Object(
        {
          kind: oneOf(['memory', 'redis'] as const, {
            description: '`memory` when `REDIS_URL` is unset (one replica only).',
          }),
          state: oneOf(['ok', 'down'] as const, {
            description: 'While Redis is down, the broker keeps serving from memory.',
          }),
          encrypted: Type.Boolean({
            description: 'Whether tokens are stored encrypted (`TOKEN_ENCRYPTION_KEY` set).',
          }),
        },
        { additionalProperties: false },
      ),
      credentials: Type.Record(
        Type.String(),
        Type.Object(
          {
            state: CredentialState,
            expires_at: Instant,
            last_error: LastError,
            secret: Type.Integer({
              minimum: 0,
              maximum: 4,
              description:
                "The 0-based index of the secret in use in the credential's list (`clientSecret`, " +
                '`appSecret`). Above 0: the preferred secret was refused and a later one works, a ' +
                'rotation is half done. Back to 0 on the next reload.',
            }),
            clock_offset_ms: Type.Union([Type.Integer(), Type.Null()], {
              description:
                "The upstream's clock minus the broker's, in ms, from the `Date` header of the last token " +
                'answer; `null` before any. Past 30 s either way the broker logs a warning once.',
            }),
          },
          { additionalProperties: false },
        ),
        { description: 'Every configured credential, by id.' },
      ),
    },
    { additionalProperties: false, description, headers: CACHE_CONTROL },
  )

export const Ready = readiness(['ready'] as const, 'Warm-up is done and the broker is not shutting down')
export const NotReady = readiness(
  ['starting', 'draining'] as const,
  'Still warming up (`starting`) or shutting down (`draining`)',
)

export const MetricsResponse = {
  description: 'The current metrics',
  content: { 'text/plain': { schema: Type.String() } },
}

/** Routes under /v1 need a client key; the others need only an allowed source address. */
export const CLIENT_KEY = [{ clientKey: [] }]
export const NO_KEY: { [scheme: string]: string[] }[] = []
