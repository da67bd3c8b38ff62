import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { loadBrokerConfig } from '../config/broker-file.js'
import { type EncryptionKeys, encryptionKeys } from '../config/encryption-keys.js'
import { type AddressCheck, parseAllowedCidrs, parseTrustProxy } from '../config/network.js'
import { ignoredRedisSettings } from '../config/redis-mode.js'
import type { EnvSource } from '../config/secrets.js'
import type { BrokerConfig } from '../core/credential.js'

export interface BrokerState {
  /** The credentials and clients in force; replaced whole on reload. */
  config: BrokerConfig
  /** Whether a source address may call the broker (ALLOWED_CIDRS). */
  allowed: AddressCheck
  /** TRUST_PROXY names a proxy in front: the caller's address is known per request, not at connect. */
  behindProxy: boolean
  /** TOKEN_ENCRYPTION_KEY and TOKEN_ENCRYPTION_OLD_KEYS, decoded; undefined when no key is set. */
  encryption: EncryptionKeys | undefined
}

declare module 'fastify' {
  interface FastifyInstance {
    broker: BrokerState
  }
}

export interface BrokerConfigOptions {
  env: EnvSource
}

/** One warn line per finding (a short client key): the client and field named, never a key. */
export function logConfigWarnings(log: FastifyBaseLogger, config: BrokerConfig): void {
  for (const { field, client, message } of config.warnings) log.warn({ client, field }, message)
}

/** Loads BROKER_CONFIG, ALLOWED_CIDRS and the encryption keys: the settings that need more than the env schema. */
async function brokerConfig(fastify: FastifyInstance, opts: BrokerConfigOptions) {
  const { config: env } = fastify
  // Checked even without Redis: a bad key is a bad configuration, whichever store is in use.
  const encryption = encryptionKeys(env)
  const allowed = parseAllowedCidrs(env.ALLOWED_CIDRS)
  // server.ts reads TRUST_PROXY before Fastify exists; refuse a bad value here too, for every embedder.
  const behindProxy = parseTrustProxy(env.TRUST_PROXY) !== false
  const config = await loadBrokerConfig({
    path: env.BROKER_CONFIG,
    env: opts.env,
    allowInsecureUpstream: env.ALLOW_INSECURE_UPSTREAM,
  })
  const log = fastify.log.child({ component: 'config' })
  logConfigWarnings(log, config)
  // Once, at start: the environment never changes on reload. Names only, never a value.
  for (const { variables, reason } of ignoredRedisSettings(opts.env)) {
    log.warn({ ignored: variables }, `${variables.join(', ')} ignored: ${reason}`)
  }
  fastify.decorate('broker', { config, allowed, behindProxy, encryption })
}

export default fp(brokerConfig, { name: 'broker-config', dependencies: ['@fastify/env'] })
