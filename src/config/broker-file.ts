import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import {
  type BrokerConfig,
  type Client,
  type ConfigWarning,
  CREDENTIAL_ID_PATTERN,
  type Credential,
} from '../core/credential.js'
import { resolveBaseUrl } from './base-url.js'
import { ConfigError } from './errors.js'
import {
  type BrokerFile,
  BrokerFileSchema,
  type ClientEntry,
  type CredentialEntry,
  DEFAULT_EQP_EXPIRES_IN,
} from './file-schema.js'
import { parseJsonText } from './json-text.js'
import { firstProblem } from './schema-errors.js'
import { type EnvSource, resolveSecrets } from './secrets.js'

export const CREDENTIAL_ID = new RegExp(CREDENTIAL_ID_PATTERN)
/** Shorter client keys are accepted (tests, demos) but warned about: they can be guessed. */
export const MIN_CLIENT_KEY_LENGTH = 16

const checkFile = TypeCompiler.Compile(BrokerFileSchema)

export interface LoadOptions {
  path: string
  env: EnvSource
  allowInsecureUpstream: boolean
}

async function resolveCredential(id: string, entry: CredentialEntry, opts: LoadOptions): Promise<Credential> {
  const field = `credentials.${id}`
  let baseUrl: string
  try {
    baseUrl = resolveBaseUrl(
      { type: entry.type, environment: entry.environment, baseUrl: entry.baseUrl },
      opts.allowInsecureUpstream,
    )
  } catch (err) {
    throw new ConfigError(`${field}.baseUrl ${(err as Error).message}`)
  }
  if (entry.type === 'ims') {
    const { clientId, scopes, environment } = entry
    const clientSecrets = await resolveSecrets(entry.clientSecret, `${field}.clientSecret`, opts.env)
    return { id, type: 'ims', environment, baseUrl, clientId, clientSecrets, scopes }
  }
  const { appId, environment } = entry
  const appSecrets = await resolveSecrets(entry.appSecret, `${field}.appSecret`, opts.env)
  const expiresIn = entry.expiresIn ?? DEFAULT_EQP_EXPIRES_IN
  return { id, type: 'eqp', environment, baseUrl, appId, appSecrets, expiresIn }
}

function allowedCredentials(
  field: string,
  list: readonly string[],
  credentials: ReadonlyMap<string, Credential>,
): Client['credentials'] {
  if (list.includes('*')) {
    if (list.length > 1) throw new ConfigError(`${field} must be ["*"] alone when it grants every credential`)
    return '*'
  }
  for (const name of list) {
    if (!credentials.has(name))
      throw new ConfigError(`${field} names "${name}", which is not a configured credential`)
  }
  return new Set(list)
}

interface KeyOwner {
  field: string
  client: string
}

async function resolveClient(
  id: string,
  entry: ClientEntry,
  credentials: ReadonlyMap<string, Credential>,
  env: EnvSource,
  owners: Map<string, KeyOwner>,
  warnings: ConfigWarning[],
): Promise<Client> {
  const field = `clients.${id}`
  const allowed = allowedCredentials(`${field}.credentials`, entry.credentials, credentials)
  const keys = await resolveSecrets(entry.key, `${field}.key`, env)
  const keyDigests = keys.map((key, i) => {
    const keyField = Array.isArray(entry.key) ? `${field}.key[${i}]` : `${field}.key`
    const digest = createHash('sha256').update(key).digest()
    // A key shared by two clients (or listed twice) would make "who is calling" ambiguous.
    const owner = owners.get(digest.toString('hex'))
    if (owner !== undefined) throw new ConfigError(`${keyField} is the same key as ${owner.field}`)
    owners.set(digest.toString('hex'), { field: keyField, client: id })
    if ([...key].length < MIN_CLIENT_KEY_LENGTH) {
      warnings.push({
        field: keyField,
        client: id,
        message: `client key shorter than ${MIN_CLIENT_KEY_LENGTH} characters: use a long random key`,
      })
    }
    return digest
  })
  return { id, keyDigests, credentials: allowed }
}

/**
 * Validates an already-parsed config document against the file's schema, then checks what the
 * schema cannot (base URLs and the https rule, credentials a client names, secrets resolved, keys
 * unique). Every failure is one ConfigError line naming the field. Exported for tests and reloads.
 */
export async function parseBrokerConfig(document: unknown, opts: LoadOptions): Promise<BrokerConfig> {
  const problem = firstProblem(checkFile, document)
  if (problem !== undefined) throw new ConfigError(problem)
  const file = document as BrokerFile

  const credentials = new Map<string, Credential>()
  for (const [id, entry] of Object.entries(file.credentials)) {
    credentials.set(id, await resolveCredential(id, entry, opts))
  }
  const clients: Client[] = []
  const owners = new Map<string, KeyOwner>()
  const warnings: ConfigWarning[] = []
  for (const [id, entry] of Object.entries(file.clients)) {
    clients.push(await resolveClient(id, entry, credentials, opts.env, owners, warnings))
  }
  return { credentials, clients, warnings }
}

/** Reads and validates the file BROKER_CONFIG names. Every error names the file and the field. */
export async function loadBrokerConfig(opts: LoadOptions): Promise<BrokerConfig> {
  let text: string
  try {
    text = await readFile(opts.path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const why = code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? 'unknown error'})`
    throw new ConfigError(`BROKER_CONFIG: the file "${opts.path}" ${why}`)
  }
  try {
    return await parseBrokerConfig(parseJsonText(text), opts)
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(`BROKER_CONFIG "${opts.path}": ${err.message}`)
    throw err
  }
}
