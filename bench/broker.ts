import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { NODE_FLAGS } from '../src/node-flags.js'
import { type Child, freePort, waitForStatus } from '../tools/process.js'
import { onCleanup, startBenchChild } from './cleanup.js'

/** Throwaway secrets: the broker reads them through `{"env": ...}` references, never from the file. */
export const SECRETS = {
  ims: `bench-ims-${randomBytes(9).toString('base64url')}`,
  eqp: `bench-eqp-${randomBytes(9).toString('base64url')}`,
  key: `bench-key-${randomBytes(12).toString('base64url')}`,
  keyOps: `bench-ops-${randomBytes(12).toString('base64url')}`,
  keyClaims: `bench-claims-${randomBytes(12).toString('base64url')}`,
}
export const AUTH = { authorization: `Bearer ${SECRETS.key}` }

/** The simulator's secret check: IMS client ids and EQP app ids are told apart by their prefix. */
export const simulatorSecret = (upstreamId: string): string | undefined =>
  upstreamId.startsWith('IMS') ? SECRETS.ims : upstreamId.startsWith('EQP') ? SECRETS.eqp : undefined

export interface BenchCredential {
  id: string
  type: 'ims' | 'eqp'
  /** The IMS client_id or EQP appId: what the simulator counts mints by. */
  upstreamId: string
}

export function credentials(
  prefix: string,
  count: number,
  types: 'ims' | 'mixed' = 'ims',
): BenchCredential[] {
  const width = String(count - 1).length
  return Array.from({ length: count }, (_, i) => {
    const n = String(i).padStart(Math.max(4, width), '0')
    const type = types === 'mixed' && i % 2 === 1 ? 'eqp' : 'ims'
    return { id: `${prefix}-${n}`, type, upstreamId: `${type.toUpperCase()}${prefix.toUpperCase()}${n}` }
  })
}

/** A broker config in the documented shape: secrets and keys only as env references. */
export function brokerDocument(simUrl: string, creds: BenchCredential[]) {
  const doc: Record<string, unknown> = {}
  for (const c of creds) {
    doc[c.id] =
      c.type === 'ims'
        ? {
            type: 'ims',
            environment: 'production',
            baseUrl: simUrl,
            clientId: c.upstreamId,
            clientSecret: { env: 'BENCH_IMS_SECRET' },
            scopes: ['openid', 'AdobeID'],
          }
        : {
            type: 'eqp',
            environment: 'sandbox',
            baseUrl: simUrl,
            appId: c.upstreamId,
            appSecret: { env: 'BENCH_EQP_SECRET' },
            expiresIn: 7200,
          }
  }
  const first = creds[0]!.id
  return {
    credentials: doc,
    // Three clients, as a small real deployment has: the key is checked against each of them.
    clients: {
      bench: { key: { env: 'BENCH_CLIENT_KEY' }, credentials: ['*'] },
      'ops-tools': { key: { env: 'BENCH_OPS_KEY' }, credentials: ['*'] },
      'claims-service': { key: { env: 'BENCH_CLAIMS_KEY' }, credentials: [first] },
    },
  }
}

const BROKER_VARS = [
  'PORT',
  'HOST',
  'BROKER_CONFIG',
  'REDIS_URL',
  'REDIS_KEY_PREFIX',
  'TOKEN_ENCRYPTION_KEY',
  'ALLOWED_CIDRS',
  'TRUST_PROXY',
  'REFRESH_MARGIN',
  'UPSTREAM_TIMEOUT_MS',
  'LOG_LEVEL',
  'ALLOW_INSECURE_UPSTREAM',
  'OTEL_EXPORTER_OTLP_ENDPOINT',
  'UPSTREAM_CONCURRENCY',
]

export interface BrokerOptions {
  name: string
  simUrl: string
  creds: BenchCredential[]
  /** Unset: no REDIS_URL, so the in-memory store (one replica), as the demo runs. */
  redisUrl?: string
  keyPrefix?: string
  encryptionKey?: string
  /** Extra node flags, e.g. --max-semi-space-size=16. */
  nodeArgs?: string[]
  /** The server script; default brokerEntry(). */
  entry?: string
  readyTimeoutMs?: number
  /** Extra environment, e.g. TLS_CERT_FILE and TLS_KEY_FILE (the URL is then https), or OTEL_EXPORTER_OTLP_ENDPOINT. */
  env?: Record<string, string>
  /** Variables of the bench's own environment the broker does not inherit. */
  unset?: readonly string[]
}

export interface Broker {
  name: string
  url: string
  child: Child
  pid: number
  stop(): Promise<void>
}

/** BENCH_NODE_ARGS: node flags for every broker, after NODE_FLAGS, e.g. "--max-semi-space-size=16" (Node's default). */
export const extraNodeArgs = (): string[] => (process.env.BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean)

/** The broker entry point: dist/server.js, or BENCH_BROKER_ENTRY to compare another build. */
export const brokerEntry = () => resolve(process.env.BENCH_BROKER_ENTRY ?? 'dist/server.js')

/** Writes the config to a temp dir; the dir goes with the bench. */
export function writeConfig(simUrl: string, creds: BenchCredential[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'token-broker-bench-'))
  onCleanup(async () => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'broker.config.json')
  writeFileSync(path, JSON.stringify(brokerDocument(simUrl, creds)))
  return path
}

/** Spawns the broker only; the caller waits for readiness (several can start at once). */
export async function spawnBroker(opts: BrokerOptions, configPath?: string): Promise<Broker> {
  const port = await freePort()
  const env: NodeJS.ProcessEnv = { ...process.env }
  for (const name of [...BROKER_VARS, ...(opts.unset ?? [])]) delete env[name]
  Object.assign(env, {
    PORT: String(port),
    HOST: '127.0.0.1',
    BROKER_CONFIG: configPath ?? writeConfig(opts.simUrl, opts.creds),
    ...(opts.redisUrl === undefined ? {} : { REDIS_URL: opts.redisUrl }),
    ...(opts.keyPrefix === undefined ? {} : { REDIS_KEY_PREFIX: opts.keyPrefix }),
    ...(opts.encryptionKey === undefined ? {} : { TOKEN_ENCRYPTION_KEY: opts.encryptionKey }),
    LOG_LEVEL: 'warn',
    BENCH_IMS_SECRET: SECRETS.ims,
    BENCH_EQP_SECRET: SECRETS.eqp,
    BENCH_CLIENT_KEY: SECRETS.key,
    BENCH_OPS_KEY: SECRETS.keyOps,
    BENCH_CLAIMS_KEY: SECRETS.keyClaims,
    ...opts.env,
  })
  const child = startBenchChild(
    opts.name,
    process.execPath,
    // The production flags first: BENCH_NODE_ARGS and per-run flags come later and so win.
    [...NODE_FLAGS, ...extraNodeArgs(), ...(opts.nodeArgs ?? []), opts.entry ?? brokerEntry()],
    { env },
  )
  return {
    name: opts.name,
    url: `${opts.env?.TLS_CERT_FILE ? 'https' : 'http'}://127.0.0.1:${port}`,
    child,
    pid: child.pid,
    stop: async () => {
      await child.stop(10_000)
    },
  }
}

export const waitReady = (b: Broker, timeoutMs = 120_000) =>
  waitForStatus(`${b.url}/readyz`, { status: 200, timeoutMs, child: b.child })

export async function startBroker(opts: BrokerOptions): Promise<Broker> {
  const b = await spawnBroker(opts)
  try {
    await waitReady(b, opts.readyTimeoutMs)
  } catch (err) {
    await b.stop()
    throw err
  }
  return b
}

export const newKeyPrefix = (what: string) => `bench-${what}-${randomBytes(4).toString('hex')}:`
export const newEncryptionKey = () => randomBytes(32).toString('base64')

/** Broker stderr/stdout lines at warn and above, for the report (a quiet hot path logs nothing). */
export function warnings(b: Broker): string[] {
  return b.child
    .output()
    .split('\n')
    .filter((l) => l.trim() !== '')
    .slice(-5)
}
