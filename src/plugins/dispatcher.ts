import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Dispatcher } from 'undici'
import { createDispatcher } from '../upstreams/dispatcher.js'

declare module 'fastify' {
  interface FastifyInstance {
    dispatcher: Dispatcher
  }
}

export interface DispatcherOptions {
  /** Injected by tests (an undici MockAgent); not closed at shutdown, as the app did not create it. */
  dispatcher?: Dispatcher
}

/** The one keep-alive connection pool every upstream call goes through. */
async function dispatcherPlugin(fastify: FastifyInstance, opts: DispatcherOptions) {
  if (opts.dispatcher) {
    fastify.decorate('dispatcher', opts.dispatcher)
    return
  }
  // Closed by the shutdown plugin.
  fastify.decorate('dispatcher', createDispatcher())
}

export default fp(dispatcherPlugin, { name: 'undici-dispatcher' })
