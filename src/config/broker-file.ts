import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { resolveBaseUrl } from '../upstreams/urls.js'
import { ConfigError } from './errors.js'
import { type EnvSource, parseSecretRef, resolveSecret } from './secrets.js'
import type { BrokerConfig, Client, Credential } from './types.js'

export const CREDENTIAL_ID = /^[a-z0-9][a-z0-9._-]{0,63}$/
const CLIENT_ID = CREDENTIAL_ID
const ENVIRONMENTS = { ims: ['production', 'stage'], eqp: ['production', 'sandbox'] } as const
const IMS_FIELDS = new Set(['type', 'environment', 'baseUrl', 'clientId', 'clientSecret', 'scopes'])
const EQP_FIELDS = new Set(['type', 'environment', 'baseUrl', 'appId', 'appSecret', 'expiresIn'])
const CLIENT_FIELDS = new Set(['key', 'credentials'])
const DEFAULT_EQP_EXPIRES_IN = 7200

export interface LoadOptions {
  path: string
  env: EnvSource
  allowInsecureUpstream: boolean
}

type Json = Record<string, unknown>

const isObject = (value: unknown): value is Json =>
  value !== null && typeof value === 'object' && !Array.isArray(value)

function fail(field: string, problem: string): never {
  throw new ConfigError(`${field} ${problem}`)
}

function onlyKnownFields(value: Json, known: Set<string>, field: string): void {
  for (const key of Object.keys(value)) {
    if (!known.has(key))
      fail(`${field}.${key}`, `is not a known field (expected one of: ${[...known].join(', ')})`)
  }
}

function requireString(value: Json, key: string, field: string): string {
  const found = value[key]
  if (typeof found !== 'string' || found.trim().length === 0)
    fail(`${field}.${key}`, 'must be a non-empty string')
  return found
}

function optionalBaseUrl(value: Json, field: string): string | undefined {
  if (value.baseUrl === undefined) return undefined
  return requireString(value, 'baseUrl', field)
}

async function parseCredential(id: string, raw: unknown, opts: LoadOptions): Promise<Credential> {
  const field = `credentials.${id}`
  if (!CREDENTIAL_ID.test(id)) fail(field, 'is not a valid credential id (^[a-z0-9][a-z0-9._-]{0,63}$)')
  if (!isObject(raw)) fail(field, 'must be an object')
  const type = raw.type
  if (type !== 'ims' && type !== 'eqp') fail(`${field}.type`, 'must be "ims" or "eqp"')
  onlyKnownFields(raw, type === 'ims' ? IMS_FIELDS : EQP_FIELDS, field)
  const environment = raw.environment
  const environments: readonly string[] = ENVIRONMENTS[type]
  if (typeof environment !== 'string' || !environments.includes(environment)) {
    fail(`${field}.environment`, `must be one of: ${environments.join(', ')}`)
  }
  const baseUrlInput = optionalBaseUrl(raw, field)
  let baseUrl: string
  try {
    baseUrl = resolveBaseUrl({ type, environment, baseUrl: baseUrlInput }, opts.allowInsecureUpstream)
  } catch (err) {
    fail(`${field}.baseUrl`, (err as Error).message)
  }

  if (type === 'ims') {
    const clientId = requireString(raw, 'clientId', field)
    const scopes = raw.scopes
    if (
      !Array.isArray(scopes) ||
      scopes.length === 0 ||
      !scopes.every((s) => typeof s === 'string' && /^[^\s,]+$/.test(s))
    ) {
      fail(`${field}.scopes`, 'must be a non-empty array of scope names (no spaces or commas)')
    }
    const ref = parseSecretRef(raw.clientSecret, `${field}.clientSecret`)
    const clientSecret = await resolveSecret(ref, `${field}.clientSecret`, opts.env)
    return {
      id,
      type,
      environment: environment as 'production' | 'stage',
      baseUrl,
      clientId,
      clientSecret,
      scopes: scopes as string[],
    }
  }

  const appId = requireString(raw, 'appId', field)
  const expiresIn = raw.expiresIn ?? DEFAULT_EQP_EXPIRES_IN
  if (
    typeof expiresIn !== 'number' ||
    !Number.isInteger(expiresIn) ||
    expiresIn < 60 ||
    expiresIn > 172_800
  ) {
    fail(`${field}.expiresIn`, 'must be a whole number of seconds from 60 to 172800')
  }
  const ref = parseSecretRef(raw.appSecret, `${field}.appSecret`)
  const appSecret = await resolveSecret(ref, `${field}.appSecret`, opts.env)
  return {
    id,
    type,
    environment: environment as 'production' | 'sandbox',
    baseUrl,
    appId,
    appSecret,
    expiresIn,
  }
}

async function parseClient(
  id: string,
  raw: unknown,
  credentials: ReadonlyMap<string, Credential>,
  env: EnvSource,
): Promise<Client> {
  const field = `clients.${id}`
  if (!CLIENT_ID.test(id)) fail(field, 'is not a valid client id (^[a-z0-9][a-z0-9._-]{0,63}$)')
  if (!isObject(raw)) fail(field, 'must be an object')
  onlyKnownFields(raw, CLIENT_FIELDS, field)
  const list = raw.credentials
  if (!Array.isArray(list) || list.length === 0 || !list.every((c) => typeof c === 'string')) {
    fail(`${field}.credentials`, 'must be a non-empty array of credential ids, or ["*"]')
  }
  let allowed: Client['credentials']
  if (list.includes('*')) {
    if (list.length > 1) fail(`${field}.credentials`, 'must be ["*"] alone when it grants every credential')
    allowed = '*'
  } else {
    for (const name of list) {
      if (!credentials.has(name))
        fail(`${field}.credentials`, `names "${name}", which is not a configured credential`)
    }
    allowed = new Set(list)
  }
  const key = await resolveSecret(parseSecretRef(raw.key, `${field}.key`), `${field}.key`, env)
  return { id, keyDigest: createHash('sha256').update(key).digest(), credentials: allowed }
}

/** Parses an already-read config document. Exported for tests and for reloads. */
export async function parseBrokerConfig(document: unknown, opts: LoadOptions): Promise<BrokerConfig> {
  if (!isObject(document)) fail('the file', 'must hold a JSON object')
  onlyKnownFields(document, new Set(['credentials', 'clients']), '(top level)')
  const rawCredentials = document.credentials
  if (!isObject(rawCredentials) || Object.keys(rawCredentials).length === 0) {
    fail('credentials', 'must be an object naming at least one credential')
  }
  const rawClients = document.clients
  if (!isObject(rawClients) || Object.keys(rawClients).length === 0) {
    fail('clients', 'must be an object naming at least one client')
  }

  const credentials = new Map<string, Credential>()
  for (const [id, raw] of Object.entries(rawCredentials)) {
    credentials.set(id, await parseCredential(id, raw, opts))
  }
  const clients: Client[] = []
  for (const [id, raw] of Object.entries(rawClients)) {
    clients.push(await parseClient(id, raw, credentials, opts.env))
  }
  for (let i = 0; i < clients.length; i++) {
    for (let j = i + 1; j < clients.length; j++) {
      const [a, b] = [clients[i]!, clients[j]!]
      if (a.keyDigest.equals(b.keyDigest))
        fail(`clients.${b.id}.key`, `is the same key as clients.${a.id}.key`)
    }
  }
  return { credentials, clients }
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
  let document: unknown
  try {
    document = JSON.parse(text)
  } catch {
    // JSON.parse quotes the text around the fault, which could be a secret: say only where.
    throw new ConfigError(`BROKER_CONFIG: "${opts.path}" is not valid JSON`)
  }
  try {
    return await parseBrokerConfig(document, opts)
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(`BROKER_CONFIG "${opts.path}": ${err.message}`)
    throw err
  }
}
