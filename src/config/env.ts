import { type Static, Type } from '@sinclair/typebox'

const DEFAULT_ALLOWED_CIDRS = '127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7'

/** An http(s) proxy URL, credentials allowed; schema errors name the variable, never the value. */
const PROXY_URL = '^https?://[^\\s/]+/?$'

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

/**
 * The environment, as validated at start by @fastify/env. This schema is the single source of the
 * variables' names, defaults, checks and TypeScript types. Values that need more than a schema can
 * say (CIDR lists, the encryption key's length, TRUST_PROXY's forms) are checked when the app
 * loads its configuration (plugins/broker-config.ts).
 */
export const EnvSchema = Type.Object({
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
  HOST: Type.String({ minLength: 1, default: '127.0.0.1' }),
  BROKER_CONFIG: Type.String({ minLength: 1, default: 'broker.config.json' }),
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://[^\\s]+$' })),
  REDIS_KEY_PREFIX: Type.String({ minLength: 1, maxLength: 200, default: 'token-broker:' }),
  TOKEN_ENCRYPTION_KEY: Type.Optional(Type.String({ minLength: 1 })),
  TOKEN_ENCRYPTION_OLD_KEYS: Type.Optional(Type.String({ minLength: 1 })),
  ALLOWED_CIDRS: Type.String({ minLength: 1, default: DEFAULT_ALLOWED_CIDRS }),
  TRUST_PROXY: Type.String({ minLength: 1, default: 'false' }),
  REFRESH_MARGIN: Type.Number({ exclusiveMinimum: 0, maximum: 0.9, default: 0.2 }),
  UPSTREAM_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 120_000, default: 10_000 }),
  LOG_LEVEL: Type.Unsafe<(typeof LOG_LEVELS)[number]>({
    type: 'string',
    enum: [...LOG_LEVELS],
    default: 'info',
  }),
  ALLOW_INSECURE_UPSTREAM: Type.Boolean({ default: false }),
  // Egress proxy for upstream token requests (config/proxy.ts); the lower-case forms win, as in curl.
  HTTPS_PROXY: Type.Optional(Type.String({ pattern: PROXY_URL })),
  https_proxy: Type.Optional(Type.String({ pattern: PROXY_URL })),
  HTTP_PROXY: Type.Optional(Type.String({ pattern: PROXY_URL })),
  http_proxy: Type.Optional(Type.String({ pattern: PROXY_URL })),
  NO_PROXY: Type.Optional(Type.String()),
  no_proxy: Type.Optional(Type.String()),
  // HTTPS on the listener, and client certificates for /v1/* (config/tls.ts).
  TLS_CERT_FILE: Type.Optional(Type.String({ minLength: 1 })),
  TLS_KEY_FILE: Type.Optional(Type.String({ minLength: 1 })),
  TLS_CLIENT_CA_FILE: Type.Optional(Type.String({ minLength: 1 })),
  /** Tracing: the OTLP collector's base URL; unset, no tracing code is loaded. */
  OTEL_EXPORTER_OTLP_ENDPOINT: Type.Optional(Type.String({ pattern: '^https?://[^\\s]+$' })),
  REDIS_SENTINELS: Type.Optional(Type.String({ minLength: 1 })),
  REDIS_SENTINEL_MASTER: Type.String({ minLength: 1, default: 'mymaster' }),
  REDIS_CLUSTER_NODES: Type.Optional(Type.String({ minLength: 1 })),
  REDIS_USERNAME: Type.Optional(Type.String({ minLength: 1 })),
  REDIS_PASSWORD: Type.Optional(Type.String({ minLength: 1 })),
  REDIS_TLS: Type.Boolean({ default: false }),
  REDIS_SENTINEL_PASSWORD: Type.Optional(Type.String({ minLength: 1 })),
  UPSTREAM_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 256, default: 4 }),
})

export type Env = Static<typeof EnvSchema>

/**
 * The environment with every empty variable left out: `NAME=` counts as unset, so its default
 * applies (compose files and shells write it for "nothing"). Applied once to the whole source,
 * before the schema and before any secret reference is looked up.
 */
export function withoutEmpty(source: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const kept: Record<string, string> = {}
  for (const [name, value] of Object.entries(source)) {
    if (value !== undefined && value !== '') kept[name] = value
  }
  return kept
}

declare module 'fastify' {
  interface FastifyInstance {
    config: Env
  }
}
