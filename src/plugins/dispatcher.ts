import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Dispatcher } from 'undici'
import { describeProxy, egressProxy } from '../config/proxy.js'
import { createDispatcher } from '../upstreams/dispatcher.js'

declare module 'fastify' {
  interface FastifyInstance {
    dispatcher: Dispatcher
  }
}

export interface DispatcherOptions {
  /** Injected by tests (an undici MockAgent); not closed at shutdown, as the app did not create it. */
  dispatcher?: Dispatcher
  /** Test seam: extra CA certificates (PEM) for upstream TLS, as NODE_EXTRA_CA_CERTS gives the process. */
  upstreamCa?: string
}

/** The one keep-alive connection pool every upstream call goes through. */
async function dispatcherPlugin(fastify: FastifyInstance, opts: DispatcherOptions) {
  if (opts.dispatcher) {
    fastify.decorate('dispatcher', opts.dispatcher)
    return
  }
  const proxy = egressProxy(fastify.config)
  const via = proxy.httpsProxy ?? proxy.httpProxy
  if (via !== undefined) {
    fastify.log.info(
      { component: 'upstream', proxy: describeProxy(via), no_proxy: proxy.noProxy ?? null },
      'upstream token requests go through an egress proxy',
    )
  }
  // Closed by the shutdown plugin.
  fastify.decorate(
    'dispatcher',
    createDispatcher({
      proxy,
      concurrency: fastify.config.UPSTREAM_CONCURRENCY,
      ...(opts.upstreamCa === undefined ? {} : { ca: opts.upstreamCa }),
    }),
  )
}

export default fp(dispatcherPlugin, { name: 'undici-dispatcher' })
