import { Type } from '@sinclair/typebox'

export const ErrorBody = Type.Object(
  {
    statusCode: Type.Integer(),
    code: Type.String(),
    error: Type.String(),
    message: Type.String(),
  },
  { $id: 'Error', additionalProperties: false },
)

const errorRef = Type.Ref('Error')

/** Per-status error responses for a route, all serialised through the one error schema. */
export const errors = (...statuses: number[]) => Object.fromEntries(statuses.map((s) => [s, errorRef]))

export const CredentialParams = Type.Object({
  credential: Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,63}$' }),
})

export const TokenQuery = Type.Object(
  { min_ttl: Type.Optional(Type.Integer({ minimum: 0, maximum: 86_400 })) },
  { additionalProperties: false },
)

export const RefreshBody = Type.Union([
  Type.Object(
    { rejected_token: Type.Optional(Type.String({ minLength: 1, maxLength: 16_384 })) },
    { additionalProperties: false },
  ),
  Type.Null(),
])

export const TokenResponse = Type.Object({
  credential: Type.String(),
  type: Type.Union([Type.Literal('ims'), Type.Literal('eqp')]),
  token_type: Type.String(),
  access_token: Type.String(),
  expires_at: Type.String({ format: 'date-time' }),
  expires_in: Type.Integer(),
  mage_id: Type.Optional(Type.String()),
  headers: Type.Object({
    Authorization: Type.String(),
    'X-API-Key': Type.Optional(Type.String()),
  }),
})

const LastErrorBody = Type.Union([
  Type.Object({ code: Type.String(), message: Type.String(), at: Type.String({ format: 'date-time' }) }),
  Type.Null(),
])
const Instant = Type.Union([Type.String({ format: 'date-time' }), Type.Null()])

export const CredentialsResponse = Type.Object({
  credentials: Type.Array(
    Type.Object({
      id: Type.String(),
      type: Type.Union([Type.Literal('ims'), Type.Literal('eqp')]),
      environment: Type.String(),
      state: Type.Union([Type.Literal('pending'), Type.Literal('ok'), Type.Literal('failing')]),
      expires_at: Instant,
      refreshed_at: Instant,
      next_refresh_at: Instant,
      last_error: LastErrorBody,
    }),
  ),
})

export const HealthResponse = Type.Object({ status: Type.Literal('ok') })

export const ReadyResponse = Type.Object({
  status: Type.Union([Type.Literal('starting'), Type.Literal('ready'), Type.Literal('draining')]),
  store: Type.Object({
    kind: Type.Union([Type.Literal('memory'), Type.Literal('redis')]),
    state: Type.Union([Type.Literal('ok'), Type.Literal('down')]),
    encrypted: Type.Boolean(),
  }),
  credentials: Type.Record(
    Type.String(),
    Type.Object({
      state: Type.Union([Type.Literal('pending'), Type.Literal('ok'), Type.Literal('failing')]),
      expires_at: Instant,
      last_error: LastErrorBody,
    }),
  ),
})
