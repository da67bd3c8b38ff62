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
  /** Injected by tests (an undici MockAgent); not closed by the plugin, as the plugin did not create it. */
  dispatcher?: Dispatcher
}

const CLOSE_BOUND_MS = 2_000

/** The one keep-alive connection pool every upstream call goes through. */
async function dispatcherPlugin(fastify: FastifyInstance, opts: DispatcherOptions) {
  if (opts.dispatcher) {
    fastify.decorate('dispatcher', opts.dispatcher)
    return
  }
  const agent = createDispatcher()
  fastify.decorate('dispatcher', agent)
  fastify.addHook('onClose', async () => {
    let timer: NodeJS.Timeout | undefined
    const bound = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), CLOSE_BOUND_MS)
    })
    const outcome = await Promise.race([agent.close().then(() => 'closed' as const), bound])
    clearTimeout(timer)
    if (outcome === 'late') await agent.destroy()
  })
}

export default fp(dispatcherPlugin, { name: 'undici-dispatcher' })
