import { MockAgent } from 'undici'
import { describe, expect, it } from 'vitest'
import { UpstreamError } from '../../src/core/failure.js'
import { createImsMint, readImsGrant } from '../../src/upstreams/ims.js'
import { CANARY, imsCredential } from '../helpers/credentials.js'
import { useUpstream } from '../helpers/upstream.js'

const ORIGIN = 'https://ims.example'

describe('IMS mint: request shape', () => {
  it('POSTs the form to {baseUrl}/ims/token/v3 with the scopes joined by commas', async () => {
    const agent = new MockAgent()
    agent.disableNetConnect()
    let seen: { path: string; headers: Record<string, string>; body: string } | undefined
    agent
      .get(ORIGIN)
      .intercept({ path: '/prefix/ims/token/v3', method: 'POST' })
      .reply((opts) => {
        seen = { path: opts.path, headers: opts.headers as Record<string, string>, body: String(opts.body) }
        return { statusCode: 200, data: { access_token: 'tok-1', token_type: 'Bearer', expires_in: 86399 } }
      })
    const mint = createImsMint(imsCredential({ baseUrl: `${ORIGIN}/prefix` }), {
      dispatcher: agent,
      timeoutMs: 1000,
    })

    await expect(mint(0)).resolves.toEqual({ accessToken: 'tok-1', tokenType: 'bearer', expiresIn: 86399 })
    expect(seen?.headers['content-type']).toBe('application/x-www-form-urlencoded')
    const form = new URLSearchParams(seen?.body)
    expect(Object.fromEntries(form)).toEqual({
      client_id: 'client-abc',
      client_secret: CANARY,
      grant_type: 'client_credentials',
      scope: 'openid,AdobeID,read_organizations',
    })
    expect(seen?.body).toContain('scope=openid%2CAdobeID%2Cread_organizations')
  })

  it('sends the secret the index names, and never lets a refusal echo any of the list', async () => {
    const secrets = [`${CANARY}-first`, `${CANARY}-second`, `${CANARY}-third`]
    const agent = new MockAgent()
    agent.disableNetConnect()
    const sent: string[] = []
    agent
      .get(ORIGIN)
      .intercept({ path: '/ims/token/v3', method: 'POST' })
      .reply((opts) => {
        const secret = new URLSearchParams(String(opts.body)).get('client_secret') ?? ''
        sent.push(secret)
        // A hostile upstream echoing the other secrets of the list in its error code.
        const echoed = secrets.find((s) => s !== secret) ?? ''
        return { statusCode: 401, data: { error: `bad_${echoed}` } }
      })
      .times(3)
    const mint = createImsMint(imsCredential({ baseUrl: ORIGIN, clientSecrets: secrets }), {
      dispatcher: agent,
      timeoutMs: 1000,
    })
    for (const index of [2, 0, 1]) {
      const err = await mint(index).then(
        () => expect.unreachable('expected a refusal'),
        (e: unknown) => e as UpstreamError,
      )
      expect(err.reason).toBe('rejected')
      for (const secret of secrets) expect(err.message).not.toContain(secret)
    }
    expect(sent).toEqual([secrets[2], secrets[0], secrets[1]])
    await expect(mint(3)).rejects.toThrow(RangeError)
  })
})

describe('IMS mint: against the simulator', () => {
  const upstream = useUpstream({ 'client-abc': CANARY })
  const { sim, dispatcher } = upstream

  it('gets a fresh bearer token each time', async () => {
    const mint = createImsMint(imsCredential({ baseUrl: upstream.url }), { dispatcher, timeoutMs: 2000 })
    const a = await mint(0)
    const b = await mint(0)
    expect(a.accessToken).toMatch(/^eyJ[A-Za-z0-9_.-]{40,}$/)
    expect(a.accessToken).not.toBe(b.accessToken)
    expect(a).toMatchObject({ tokenType: 'bearer', expiresIn: 86399 })
    expect(a.mageId).toBeUndefined()
    expect(sim.issued('client-abc')).toBe(2)
  })
})

describe('readImsGrant', () => {
  const ok = { access_token: 'abc.def', token_type: 'bearer', expires_in: 86399 }
  it('accepts a valid answer, normalising token_type and defaulting it to bearer', () => {
    expect(readImsGrant(ok)).toEqual({ accessToken: 'abc.def', tokenType: 'bearer', expiresIn: 86399 })
    expect(readImsGrant({ ...ok, token_type: 'BEARER' }).tokenType).toBe('bearer')
    expect(readImsGrant({ access_token: 'x', expires_in: 172800 }).tokenType).toBe('bearer')
    expect(readImsGrant({ ...ok, expires_in: 0.5 }).expiresIn).toBe(0.5)
  })

  it.each([
    ['not an object', 'tok'],
    ['null', null],
    ['an array', [ok]],
    ['no token', { expires_in: 86399 }],
    ['empty token', { ...ok, access_token: '' }],
    ['numeric token', { ...ok, access_token: 42 }],
    ['token with a newline', { ...ok, access_token: 'abc\r\nX-Evil: 1' }],
    ['token with a space', { ...ok, access_token: 'abc def' }],
    ['expires_in 0', { ...ok, expires_in: 0 }],
    ['expires_in -5', { ...ok, expires_in: -5 }],
    ['expires_in 1e9', { ...ok, expires_in: 1e9 }],
    ['expires_in 172801', { ...ok, expires_in: 172801 }],
    ['expires_in "86399"', { ...ok, expires_in: '86399' }],
    ['expires_in missing', { access_token: 'x' }],
    ['token_type not a string', { ...ok, token_type: 1 }],
    // The store refuses such a token on read-back: other replicas could not use it.
    ['token_type with a space', { ...ok, token_type: 'Bearer x' }],
    ['token_type with a newline', { ...ok, token_type: 'bearer\r\nX-Evil: 1' }],
  ])('refuses %s as malformed', (_name, answer) => {
    try {
      readImsGrant(answer)
      expect.unreachable()
    } catch (err) {
      expect(err).toBeInstanceOf(UpstreamError)
      expect((err as UpstreamError).reason).toBe('malformed')
      expect((err as UpstreamError).message).toMatch(/^IMS token answer malformed: /)
    }
  })
})
