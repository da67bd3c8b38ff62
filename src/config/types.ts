import type { CredentialType } from '../tokens/token.js'

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
  readonly clientSecret: string
  readonly scopes: readonly string[]
}

export interface EqpCredential extends CredentialBase {
  readonly type: 'eqp'
  readonly environment: 'production' | 'sandbox'
  readonly appId: string
  readonly appSecret: string
  /** Session lifetime to ask for, in seconds. */
  readonly expiresIn: number
}

export type Credential = ImsCredential | EqpCredential

export interface Client {
  readonly id: string
  /** SHA-256 of the client key: the key itself is never kept. */
  readonly keyDigest: Buffer
  /** Credential ids this client may use; '*' for all. */
  readonly credentials: '*' | ReadonlySet<string>
}

/** The credentials-and-clients file, validated, with every secret reference resolved. */
export interface BrokerConfig {
  readonly credentials: ReadonlyMap<string, Credential>
  readonly clients: readonly Client[]
}
