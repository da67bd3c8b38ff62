// undici's own files, loaded one by one by upstreams/undici.ts; the package ships types for its
// index only. Each file exports what the index re-exports under the same name.
declare module 'undici/lib/dispatcher/agent.js' {
  import type { Agent } from 'undici'

  const AgentClass: typeof Agent
  export = AgentClass
}

declare module 'undici/lib/dispatcher/dispatcher.js' {
  import type { Dispatcher } from 'undici'

  const DispatcherClass: typeof Dispatcher
  export = DispatcherClass
}

declare module 'undici/lib/dispatcher/env-http-proxy-agent.js' {
  import type { EnvHttpProxyAgent } from 'undici'

  const EnvHttpProxyAgentClass: typeof EnvHttpProxyAgent
  export = EnvHttpProxyAgentClass
}

declare module 'undici/lib/dispatcher/pool.js' {
  import type { Pool } from 'undici'

  const PoolClass: typeof Pool
  export = PoolClass
}

/** The request API the index mixes into every dispatcher, each method taking the dispatcher as `this`. */
declare module 'undici/lib/api/index.js' {
  import type { Dispatcher } from 'undici'

  const api: Pick<Dispatcher, 'request' | 'stream' | 'pipeline' | 'connect' | 'upgrade'>
  export = api
}
