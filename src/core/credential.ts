import { createHash } from 'node:crypto'

export type CredentialType = 'ims' | 'eqp'

/** What a credential id looks like: the file's keys, the routes' path parameter. */
export const CREDENTIAL_ID_PATTERN = '^[a-z0-9][a-z0-9._-]{0,63}$'

interface CredentialBase {
  readonly id: string
  readonly type: CredentialType
  readonly environment: string
  /** Resolved origin (environment default or the file's baseUrl), already checked by the https rule. */
  readonly baseUrl: string
}

export interface ImsCredential extends CredentialBase {
  readonly type: 'ims'
  readonly environment: 'production' | 'stage'
  readonly clientId: string
  /** Every secret the file lists, in order, first preferred (rotation). */
  readonly clientSecrets: readonly string[]
  readonly scopes: readonly string[]
}

export interface EqpCredential extends CredentialBase {
  readonly type: 'eqp'
  readonly environment: 'production' | 'sandbox'
  readonly appId: string
  /** Every secret the file lists, in order, first preferred (rotation). */
  readonly appSecrets: readonly string[]
  /** Session lifetime to ask for, in seconds. */
  readonly expiresIn: number
}

export type Credential = ImsCredential | EqpCredential

/**
 * A digest of everything a credential mints with (secrets included), equal on replicas with equal
 * settings; stored with tokens for the generation fence, never logged.
 */
export const settingsDigest = (credential: Credential): string =>
  createHash('sha256').update(JSON.stringify(credential)).digest('base64url').slice(0, 22)

/** The credential's secrets in the file's order, first preferred. */
export const secretsOf = (credential: Credential): readonly string[] =>
  credential.type === 'ims' ? credential.clientSecrets : credential.appSecrets

export interface Client {
  readonly id: string
  /** SHA-256 of each of the client's keys (any one authenticates): the keys themselves are never kept. */
  readonly keyDigests: readonly Buffer[]
  /** Credential ids this client may use; '*' for all. */
  readonly credentials: '*' | ReadonlySet<string>
}

/** The credentials-and-clients file, validated, with every secret reference resolved. */
export interface BrokerConfig {
  readonly credentials: ReadonlyMap<string, Credential>
  readonly clients: readonly Client[]
  /** Accepted but worth an operator's attention (a short client key); never holds a secret. */
  readonly warnings: readonly ConfigWarning[]
}

export interface ConfigWarning {
  /** The field at issue, e.g. `clients.ops-tools.key[1]`. */
  readonly field: string
  readonly client?: string
  readonly message: string
}
