import { createHash } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { loadBrokerConfig } from '../config/broker-file.js'
import type { EnvSource } from '../config/secrets.js'
import type { BrokerConfig } from '../core/credential.js'
import { logConfigWarnings } from './broker-config.js'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Re-reads BROKER_CONFIG and every secret it references, and applies the result. A bad file or
     * a missing secret is refused with a log line and the running configuration stays.
     */
    reloadConfig(reason: string): Promise<boolean>
  }
}

export interface ReloadOptions {
  env: EnvSource
  /**
   * Re-check the file and secrets this often (0 = never). Mounted secrets are swapped through
   * symlinks, which fs.watch misses, so a cheap poll is the dependable way to notice rotation.
   */
  pollMs?: number
}

/** The clients in force. Credentials are the token manager's to compare (reconfigure). */
function clientsDigest(config: BrokerConfig): string {
  const hash = createHash('sha256')
  for (const client of config.clients) {
    hash.update(client.id)
    for (const key of client.keyDigests) hash.update(key)
    hash.update(client.credentials === '*' ? '*' : [...client.credentials].join(','))
  }
  return hash.digest('hex')
}

async function reloadPlugin(fastify: FastifyInstance, opts: ReloadOptions) {
  const log = fastify.log.child({ component: 'config' })
  let clients = clientsDigest(fastify.broker.config)
  let running: Promise<boolean> | undefined

  async function reload(reason: string): Promise<boolean> {
    let next: BrokerConfig
    try {
      next = await loadBrokerConfig({
        path: fastify.config.BROKER_CONFIG,
        env: opts.env,
        allowInsecureUpstream: fastify.config.ALLOW_INSECURE_UPSTREAM,
      })
    } catch (err) {
      // ConfigError messages name the field, never a secret's value.
      log.error(
        { reason, problem: (err as Error).message },
        'configuration reload refused: keeping the running one',
      )
      return false
    }
    fastify.broker.config = next
    const changes = await fastify.tokens.reconfigure(next.credentials.values())
    const nextClients = clientsDigest(next)
    const credentialsChanged = changes.added.length + changes.removed.length + changes.changed.length > 0
    if (nextClients === clients && !credentialsChanged) {
      if (reason === 'SIGHUP') log.info({ reason }, 'configuration unchanged')
      return true
    }
    clients = nextClients
    logConfigWarnings(log, next)
    log.info(
      { reason, credentials: next.credentials.size, clients: next.clients.length },
      'configuration reloaded',
    )
    return true
  }

  // One reload at a time, in order; a reload that throws must not break the ones after it.
  fastify.decorate('reloadConfig', (reason: string) => {
    running = (running ?? Promise.resolve(true))
      .then(async () => {
        const config = await reload(reason)
        // The listener's certificate rotates on the same signal and poll as the secrets.
        const certificate = (await fastify.listenerTls?.reload(reason)) ?? true
        return config && certificate
      })
      .catch((err: unknown) => {
        log.error({ reason, problem: (err as Error).message }, 'configuration reload failed')
        return false
      })
    return running
  })

  if (opts.pollMs) {
    const timer = setInterval(() => void fastify.reloadConfig('secret poll'), opts.pollMs)
    timer.unref()
    fastify.addHook('onClose', async () => clearInterval(timer))
  }
}

export default fp(reloadPlugin, { name: 'reload', dependencies: ['broker-config', 'tokens', 'listener-tls'] })
