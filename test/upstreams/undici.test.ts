// The broker loads undici's parts from their own files (src/upstreams/undici.ts). This holds them to
// the package: an upgrade that moves or renames one of those files, or changes what it exports,
// fails here rather than at start-up. (That the parts work without the index, request API
// included, is shown by the broker processes of test/process/footprint.test.ts, which never load it.)
import * as undici from 'undici'
import { describe, expect, it } from 'vitest'
import { Agent, EnvHttpProxyAgent, Pool } from '../../src/upstreams/undici.js'

describe("undici's parts", () => {
  it('are the classes the package exports', () => {
    expect(Agent).toBe(undici.Agent)
    expect(EnvHttpProxyAgent).toBe(undici.EnvHttpProxyAgent)
    expect(Pool).toBe(undici.Pool)
  })
})
