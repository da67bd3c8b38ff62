import { MockAgent } from 'undici'
import { describe, expect, it } from 'vitest'
import { UpstreamError } from '../../src/core/failure.js'
import { createEqpMint, readEqpGrant } from '../../src/upstreams/eqp.js'
import { CANARY, eqpCredential } from '../helpers/credentials.js'
import { useUpstream } from '../helpers/upstream.js'

const ORIGIN = 'https://eqp.example'

describe('EQP mint: request shape', () => {
  it('POSTs JSON with HTTP Basic to {baseUrl}/rest/v1/app/session/token', async () => {
    const agent = new MockAgent()
    agent.disableNetConnect()
    let seen: { headers: Record<string, string>; body: string } | undefined
    agent
      .get(ORIGIN)
      .intercept({ path: '/rest/v1/app/session/token', method: 'POST' })
      .reply((opts) => {
        seen = { headers: opts.headers as Record<string, string>, body: String(opts.body) }
        return { statusCode: 200, data: { mage_id: 'MAG123456789', ust: 'baGXo.cAxZ', expires_in: 7200 } }
      })
    const mint = createEqpMint(eqpCredential({ baseUrl: ORIGIN, expiresIn: 5400 }), {
      dispatcher: agent,
      timeoutMs: 1000,
    })

    await expect(mint(0)).resolves.toEqual({
      accessToken: 'baGXo.cAxZ',
      tokenType: 'bearer',
      mageId: 'MAG123456789',
      expiresIn: 7200,
    })
    expect(seen?.headers['content-type']).toBe('application/json')
    const basic = /^Basic (.+)$/.exec(seen?.headers.authorization ?? '')
    expect(Buffer.from(basic?.[1] ?? '', 'base64').toString()).toBe(`AQ17NZ49WC:${CANARY}`)
    expect(JSON.parse(seen?.body ?? '')).toEqual({ grant_type: 'session', expires_in: 5400 })
  })
})

describe('EQP mint: against the simulator', () => {
  const upstream = useUpstream({ AQ17NZ49WC: CANARY })
  const { sim, dispatcher } = upstream

  it('gets a session token for the lifetime asked, at most upstream maximum', async () => {
    const short = await createEqpMint(eqpCredential({ baseUrl: upstream.url, expiresIn: 600 }), {
      dispatcher,
      timeoutMs: 2000,
    })(0)
    const long = await createEqpMint(eqpCredential({ baseUrl: upstream.url, expiresIn: 86400 }), {
      dispatcher,
      timeoutMs: 2000,
    })(0)
    expect(short).toMatchObject({ tokenType: 'bearer', expiresIn: 600 })
    expect(long.expiresIn).toBe(7200)
    expect(short.mageId).toMatch(/^MAG\d{9}$/)
    expect(long.mageId).toBe(short.mageId)
    expect(short.accessToken).not.toBe(long.accessToken)
    expect(sim.issued('AQ17NZ49WC')).toBe(2)
  })
})

describe('readEqpGrant', () => {
  const ok = { mage_id: 'MAG1', ust: 'u.s.t', expires_in: 7200 }
  it('accepts a valid answer', () => {
    expect(readEqpGrant(ok)).toEqual({
      accessToken: 'u.s.t',
      tokenType: 'bearer',
      mageId: 'MAG1',
      expiresIn: 7200,
    })
  })

  it.each([
    ['not JSON object', 'x'],
    ['no ust', { mage_id: 'MAG1', expires_in: 7200 }],
    ['empty ust', { ...ok, ust: '' }],
    ['no mage_id', { ust: 'u', expires_in: 7200 }],
    ['numeric mage_id', { ...ok, mage_id: 123 }],
    // The store refuses such a token on read-back: other replicas could not use it.
    ['mage_id with a space', { ...ok, mage_id: 'MAG 1' }],
    ['mage_id with a control character', { ...ok, mage_id: 'MAG1\u0000' }],
    ['expires_in 0', { ...ok, expires_in: 0 }],
    ['expires_in -5', { ...ok, expires_in: -5 }],
    ['expires_in 1e9', { ...ok, expires_in: 1e9 }],
    ['expires_in "7200"', { ...ok, expires_in: '7200' }],
    ['expires_in NaN-ish null', { ...ok, expires_in: null }],
  ])('refuses %s as malformed', (_name, answer) => {
    try {
      readEqpGrant(answer)
      expect.unreachable()
    } catch (err) {
      expect(err).toBeInstanceOf(UpstreamError)
      expect((err as UpstreamError).reason).toBe('malformed')
      expect((err as UpstreamError).message).toMatch(/^EQP token answer malformed: /)
    }
  })
})
