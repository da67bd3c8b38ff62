import api from 'undici/lib/api/index.js'
import Agent from 'undici/lib/dispatcher/agent.js'
import Dispatcher from 'undici/lib/dispatcher/dispatcher.js'
import EnvHttpProxyAgent from 'undici/lib/dispatcher/env-http-proxy-agent.js'
import Pool from 'undici/lib/dispatcher/pool.js'

/*
 * The parts of undici the broker uses, each loaded from its own file. undici's index loads the whole
 * library at once (fetch, WebSocket, EventSource, caches, cookies, mocks, every interceptor), most of
 * it never used by a process that pools connections and posts token requests, and all of it held in
 * memory for the life of the process (docs/performance.md, Footprint).
 *
 * The index also mixes the request API (request, stream, pipeline, connect, upgrade) into every
 * dispatcher; the same mixing is done here, so these classes are exactly what the package exports
 * and what its types describe (the same files: test/upstreams/undici.test.ts holds them to it, so an
 * upgrade that moves one fails a test rather than start-up). Loading the index as well, as tests do
 * for undici's MockAgent, repeats the assignment with the same functions.
 */
Object.assign(Dispatcher.prototype, api)

export { Agent, EnvHttpProxyAgent, Pool }
