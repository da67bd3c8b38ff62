import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import Fastify, { type FastifyInstance } from 'fastify'
import app, { type AppOptions, httpsOptions, serverOptions } from '../../src/app.js'
import { readListenerTls } from '../../src/config/tls.js'
import { loggerOptions } from '../../src/log/options.js'
import { createSimulator, type Simulator, type SimulatorOptions } from '../../src/simulator/server.js'

/** Canary values: the log tests assert none of them ever reaches a log line. */
export const SECRETS = {
  ims: 'ims-secret-CANARY-7f3a9c',
  eqp: 'eqp-secret-CANARY-51d2e8',
  keyAll: 'key-all-CANARY-0b8e44',
  keyIms: 'key-ims-CANARY-c19a07',
}
export const IMS_CLIENT_ID = 'ims-client-1'
export const EQP_APP_ID = 'AQ17NZ49WC'

export const auth = (key: string) => ({ authorization: `Bearer ${key}` })

/** The simulator, accepting exactly the canary secrets. */
export async function startSimulator(opts: Pick<SimulatorOptions, 'tls'> = {}): Promise<Simulator> {
  const sim = createSimulator({
    ...opts,
    secrets: { [IMS_CLIENT_ID]: SECRETS.ims, [EQP_APP_ID]: SECRETS.eqp },
  })
  await sim.listen()
  return sim
}

export function brokerDocument(simUrl: string, extra: Record<string, unknown> = {}) {
  return {
    credentials: {
      'adobe-ims': {
        type: 'ims',
        environment: 'production',
        baseUrl: simUrl,
        clientId: IMS_CLIENT_ID,
        clientSecret: { env: 'TEST_IMS_SECRET' },
        scopes: ['openid', 'AdobeID'],
      },
      marketplace: {
        type: 'eqp',
        environment: 'sandbox',
        baseUrl: simUrl,
        appId: EQP_APP_ID,
        appSecret: { env: 'TEST_EQP_SECRET' },
        expiresIn: 7200,
      },
      ...extra,
    },
    clients: {
      'ops-tools': { key: { env: 'TEST_KEY_ALL' }, credentials: ['*'] },
      'claims-service': { key: { env: 'TEST_KEY_IMS' }, credentials: ['adobe-ims'] },
    },
  }
}

export const baseEnv = (configPath: string): Record<string, string> => ({
  BROKER_CONFIG: configPath,
  TEST_IMS_SECRET: SECRETS.ims,
  TEST_EQP_SECRET: SECRETS.eqp,
  TEST_KEY_ALL: SECRETS.keyAll,
  TEST_KEY_IMS: SECRETS.keyIms,
  LOG_LEVEL: 'silent',
})

export async function writeConfig(
  document: unknown,
): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'token-broker-test-'))
  const path = join(dir, 'broker.config.json')
  await writeFile(path, JSON.stringify(document))
  return { path, cleanup: () => rm(dir, { recursive: true, force: true }) }
}

export interface TestBrokerOptions extends Partial<Omit<AppOptions, 'env'>> {
  simUrl: string
  env?: Record<string, string>
  document?: unknown
  /** Collects every log line (as text) when given; the log level is then `trace` unless env sets it. */
  logLines?: string[]
  /** Wait for warm-up before returning (default true). */
  warm?: boolean
}

/** The real app, built in-process as server.ts builds it (HTTPS when env names TLS files), but not listening. */
export async function buildBroker(opts: TestBrokerOptions): Promise<FastifyInstance> {
  const { path, cleanup } = await writeConfig(opts.document ?? brokerDocument(opts.simUrl))
  const env = { ...baseEnv(path), ...(opts.logLines ? { LOG_LEVEL: 'trace' } : {}), ...opts.env }
  const stream = opts.logLines
    ? new Writable({
        write(chunk, _enc, done) {
          opts.logLines!.push(String(chunk))
          done()
        },
      })
    : undefined
  const tls = await readListenerTls(env)
  const fastify = Fastify({
    ...serverOptions(env.LOG_LEVEL ?? 'trace'),
    ...(tls === undefined ? {} : httpsOptions(tls)),
    logger: stream ? { ...loggerOptions(env.LOG_LEVEL ?? 'trace'), stream } : false,
  }) as unknown as FastifyInstance
  fastify.addHook('onClose', cleanup)
  try {
    await fastify.register(app, {
      env,
      clock: opts.clock,
      random: opts.random,
      dispatcher: opts.dispatcher,
      upstreamCa: opts.upstreamCa,
    })
    await fastify.ready()
  } catch (err) {
    // A refused start (as server.ts would exit on) leaves nothing behind: the caller checks the error.
    await fastify.close().catch(() => undefined)
    throw err
  }
  if (opts.warm !== false) await fastify.tokens.start()
  return fastify
}
