import { type Static, Type } from '@sinclair/typebox'
import { CREDENTIAL_ID_PATTERN } from '../core/credential.js'

/**
 * The credentials-and-clients file (BROKER_CONFIG): the one source of its validation and its static
 * types. What a schema cannot say (secrets resolved, the https rule, credentials a client names
 * existing, keys unique) is checked afterwards in broker-file.ts.
 *
 * `errorMessage` is the sentence shown after the field's path when a value breaks the schema;
 * `discriminator` names the property that picks a union's variant, so an error is reported against
 * the variant the file meant (see schema-errors.ts).
 */

export const MAX_REFERENCES = 5
/** The session lifetime an EQP credential asks for when the file names none, in seconds. */
export const DEFAULT_EQP_EXPIRES_IN = 7200
const ENV_NAME = '^[A-Za-z_][A-Za-z0-9_]*$'

const REF_SHAPE = '{"env": "NAME"} or {"file": "/path"}'

/** Where a secret is read from: never the secret itself. */
export const SecretRefSchema = Type.Union(
  [
    Type.Object({ env: Type.String({ pattern: ENV_NAME }) }, { additionalProperties: false }),
    Type.Object({ file: Type.String({ minLength: 1 }) }, { additionalProperties: false }),
  ],
  {
    errorMessage: `must be ${REF_SHAPE} (a valid variable name, a non-empty path, nothing else); a literal secret is refused`,
  },
)

/** One reference, or an ordered list of 1 to 5 (rotation: the first is preferred). */
export const SecretRefsSchema = Type.Union(
  [
    SecretRefSchema,
    Type.Array(SecretRefSchema, {
      minItems: 1,
      maxItems: MAX_REFERENCES,
      errorMessage: `must list 1 to ${MAX_REFERENCES} references`,
    }),
  ],
  {
    errorMessage: `must be ${REF_SHAPE}, or a list of 1 to ${MAX_REFERENCES} of them; a literal secret is refused`,
  },
)

const NonBlank = (options: Record<string, unknown> = {}) =>
  Type.String({ pattern: '\\S', errorMessage: 'must be a non-empty string', ...options })

const environment = <A extends string, B extends string>(a: A, b: B) =>
  Type.Union([Type.Literal(a), Type.Literal(b)], { errorMessage: `must be one of: ${a}, ${b}` })

const credentialType = <T extends string>(name: T) =>
  Type.Literal(name, { errorMessage: 'must be "ims" or "eqp"' })

/** The fields every credential has: its type, the Adobe environment, and an optional base URL. */
const common = <T extends string, A extends string, B extends string>(type: T, envA: A, envB: B) => ({
  type: credentialType(type),
  environment: environment(envA, envB),
  baseUrl: Type.Optional(NonBlank()),
})

export const ImsCredentialSchema = Type.Object(
  {
    ...common('ims', 'production', 'stage'),
    clientId: NonBlank(),
    clientSecret: SecretRefsSchema,
    scopes: Type.Array(
      Type.String({ pattern: '^[^\\s,]+$', errorMessage: 'must be a scope name (no spaces or commas)' }),
      {
        minItems: 1,
        errorMessage: 'must be a non-empty array of scope names (no spaces or commas)',
      },
    ),
  },
  { additionalProperties: false },
)

export const EqpCredentialSchema = Type.Object(
  {
    ...common('eqp', 'production', 'sandbox'),
    appId: NonBlank(),
    appSecret: SecretRefsSchema,
    expiresIn: Type.Optional(
      Type.Integer({
        minimum: 60,
        maximum: 172_800,
        default: DEFAULT_EQP_EXPIRES_IN,
        errorMessage: 'must be a whole number of seconds from 60 to 172800',
      }),
    ),
  },
  { additionalProperties: false },
)

export const CredentialSchema = Type.Union([ImsCredentialSchema, EqpCredentialSchema], {
  discriminator: 'type',
  errorMessage: 'must be an object',
})

export const ClientSchema = Type.Object(
  {
    key: SecretRefsSchema,
    credentials: Type.Array(Type.String({ errorMessage: 'must be a credential id or "*"' }), {
      minItems: 1,
      errorMessage: 'must be a non-empty array of credential ids, or ["*"]',
    }),
  },
  { additionalProperties: false, errorMessage: 'must be an object' },
)

export const BrokerFileSchema = Type.Object(
  {
    credentials: Type.Record(Type.String({ pattern: CREDENTIAL_ID_PATTERN }), CredentialSchema, {
      minProperties: 1,
      additionalProperties: false,
      idNoun: 'credential id',
      errorMessage: 'must be an object naming at least one credential',
    }),
    clients: Type.Record(Type.String({ pattern: CREDENTIAL_ID_PATTERN }), ClientSchema, {
      minProperties: 1,
      additionalProperties: false,
      idNoun: 'client id',
      errorMessage: 'must be an object naming at least one client',
    }),
  },
  { additionalProperties: false, errorMessage: 'must hold a JSON object' },
)

export type SecretRef = Static<typeof SecretRefSchema>
export type SecretRefs = Static<typeof SecretRefsSchema>
export type BrokerFile = Static<typeof BrokerFileSchema>
export type CredentialEntry = Static<typeof CredentialSchema>
export type ClientEntry = Static<typeof ClientSchema>
