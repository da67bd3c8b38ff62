import { createServer } from 'node:net'
import { beforeEach, describe, expect, it } from 'vitest'
import type { Credential } from '../../src/core/credential.js'
import { type FailureReason, UpstreamError } from '../../src/core/failure.js'
import type { MalformedKind } from '../../src/simulator/server.js'
import { createMint } from '../../src/upstreams/index.js'
import { CANARY, eqpCredential, imsCredential } from '../helpers/credentials.js'
import { useUpstream } from '../helpers/upstream.js'

/** Every failure class, for both upstream kinds, over real HTTP against the simulator. */
const KINDS = [
  {
    kind: 'ims',
    id: 'client-abc',
    cred: (url: string) => imsCredential({ baseUrl: url }),
    rejectStatus: 400,
  },
  {
    kind: 'eqp',
    id: 'AQ17NZ49WC',
    cred: (url: string) => eqpCredential({ baseUrl: url }),
    rejectStatus: 401,
  },
] as const

const upstream = useUpstream({ 'client-abc': CANARY, AQ17NZ49WC: CANARY })
const { sim, dispatcher } = upstream
beforeEach(() => sim.reset())

async function mintFailure(cred: Credential, timeoutMs = 2000): Promise<UpstreamError> {
  const err = await createMint(cred, { dispatcher, timeoutMs })(0).then(
    () => expect.unreachable('expected a failure'),
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(UpstreamError)
  // Messages carry fixed wording, status and upstream code only: never the secret, a token or upstream prose.
  const { message } = err as UpstreamError
  expect(message).not.toContain(CANARY)
  expect(message).not.toMatch(/eyJ|invalid client_id|Invalid application|Maintenance/)
  return err as UpstreamError
}

describe.each(KINDS)('$kind mint failures', ({ kind, id, cred, rejectStatus }) => {
  const label = kind.toUpperCase()

  it('a wrong secret is rejected, with the upstream code in the message', async () => {
    const err = await mintFailure({
      ...cred(upstream.url),
      ...(kind === 'ims'
        ? { clientSecret: 'wrong', clientSecrets: ['wrong'] }
        : { appSecret: 'wrong', appSecrets: ['wrong'] }),
    })
    expect(err.reason).toBe('rejected')
    expect(err.kind).toBe('rejected')
    expect(err.status).toBe(rejectStatus)
    expect(err.message).toBe(
      `${label} token request rejected (HTTP ${rejectStatus}, ${kind === 'ims' ? 'invalid_client' : '401'})`,
    )
    expect(sim.mints(id)).toBe(1)
    expect(sim.issued(id)).toBe(0)
  })

  it.each([400, 401, 403])('a %i refusal is rejected', async (status) => {
    sim.behave(id, { mode: 'reject', status })
    const err = await mintFailure(cred(upstream.url))
    expect(err.reason).toBe('rejected')
    expect(err.status).toBe(status)
  })

  it('a 5xx is unavailable, with Retry-After seconds', async () => {
    sim.behave(id, { mode: 'error5xx', status: 502, retryAfter: 7 })
    const err = await mintFailure(cred(upstream.url))
    expect(err).toMatchObject({ reason: 'unavailable', status: 502, retryAfterMs: 7000 })
  })

  it('a 429 is unavailable, with Retry-After as seconds or as an HTTP-date', async () => {
    sim.behave(id, { mode: 'rate_limited', retryAfter: 30 })
    expect(await mintFailure(cred(upstream.url))).toMatchObject({
      reason: 'unavailable',
      status: 429,
      retryAfterMs: 30_000,
    })

    sim.behave(id, { retryAfter: new Date(Date.now() + 120_000).toUTCString() })
    const dated = await mintFailure(cred(upstream.url))
    expect(dated.reason).toBe('unavailable')
    expect(dated.retryAfterMs).toBeGreaterThan(115_000)
    expect(dated.retryAfterMs).toBeLessThanOrEqual(120_000)
  })

  it('no answer within timeoutMs is timeout', async () => {
    sim.behave(id, { mode: 'hang' })
    const started = Date.now()
    const err = await mintFailure(cred(upstream.url), 200)
    expect(err.reason).toBe('timeout')
    expect(Date.now() - started).toBeLessThan(2000)
  })

  it('a slow answer within timeoutMs is fine', async () => {
    sim.behave(id, { latencyMs: 50 })
    await expect(createMint(cred(upstream.url), { dispatcher, timeoutMs: 2000 })(0)).resolves.toHaveProperty(
      'accessToken',
    )
  })

  it('connection refused is network', async () => {
    const closedPort = await freePort()
    const err = await mintFailure(cred(`http://127.0.0.1:${closedPort}`))
    expect(err.reason).toBe('network')
    expect(err.message).toBe(`${label} token request failed: network error (ECONNREFUSED)`)
  })

  it.each<MalformedKind>([
    'html',
    'not_json',
    'no_token',
    'expires_zero',
    'expires_negative',
    'expires_huge',
    'expires_string',
  ])('a %s answer is malformed', async (malformed) => {
    sim.behave(id, { mode: 'malformed', malformed })
    const err = await mintFailure(cred(upstream.url))
    expect(err.reason).toBe('malformed' satisfies FailureReason)
    expect(err.message).toMatch(new RegExp(`^${label} token answer malformed: `))
  })
})

/** A port nothing listens on: bind one, then let it go. */
async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as { port: number }
  await new Promise((r) => server.close(r))
  return port
}
