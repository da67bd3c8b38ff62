import { X509Certificate } from 'node:crypto'
import type { Server as TlsServer } from 'node:tls'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { ConfigError } from '../config/errors.js'
import type { EnvSource } from '../config/secrets.js'
import { type ListenerTls, readListenerTls } from '../config/tls.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Present when the listener serves HTTPS (TLS_CERT_FILE and TLS_KEY_FILE). */
    listenerTls: ListenerTlsControl | undefined
  }
}

export interface ListenerTlsControl {
  /**
   * Re-reads the certificate, key and client CA; a changed, usable set is used for new connections
   * (open ones keep theirs). A bad set is refused with a log line and the running one stays.
   */
  reload(reason: string): Promise<boolean>
}

export interface TlsOptions {
  env: EnvSource
}

const notAfter = (tls: ListenerTls): string => new X509Certificate(tls.cert).validTo

/** The listener's certificate in force, and its rotation (reload.ts calls it on SIGHUP and the poll). */
async function tlsPlugin(fastify: FastifyInstance, opts: TlsOptions) {
  const running = await readListenerTls(opts.env)
  if (running === undefined) {
    fastify.decorate('listenerTls', undefined)
    return
  }
  const server = fastify.server as unknown as Partial<TlsServer>
  if (typeof server.setSecureContext !== 'function') {
    throw new ConfigError(
      'TLS_CERT_FILE and TLS_KEY_FILE are set but the server was built without HTTPS (see httpsOptions in app.ts)',
    )
  }
  const setSecureContext = server.setSecureContext.bind(server)
  const log = fastify.log.child({ component: 'tls' })
  log.info({ not_after: notAfter(running), client_certificates: running.ca !== undefined }, 'serving HTTPS')
  let digest = running.digest
  // The poll meets a half-rotated pair every 30 s until it is fixed: one line per distinct problem.
  let lastProblem: string | undefined

  async function reload(reason: string): Promise<boolean> {
    let next: ListenerTls | undefined
    try {
      next = await readListenerTls(opts.env)
      if (next === undefined) return true
      if (next.digest === digest) {
        lastProblem = undefined
        return true
      }
      setSecureContext({ cert: next.cert, key: next.key, ...(next.ca === undefined ? {} : { ca: next.ca }) })
    } catch (err) {
      const problem = (err as Error).message
      if (problem !== lastProblem || reason === 'SIGHUP') {
        log.error({ reason, problem }, 'listener certificate refused: keeping the running one')
      }
      lastProblem = problem
      return false
    }
    digest = next.digest
    lastProblem = undefined
    log.info({ reason, not_after: notAfter(next) }, 'listener certificate reloaded')
    return true
  }

  fastify.decorate('listenerTls', { reload })
}

export default fp(tlsPlugin, { name: 'listener-tls' })
