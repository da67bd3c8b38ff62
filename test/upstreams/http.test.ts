import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Agent, MockAgent } from 'undici'
import { describe, expect, it, onTestFinished } from 'vitest'
import { UpstreamError } from '../../src/core/failure.js'
import { MAX_BODY_BYTES, parseRetryAfter, postForJson, upstreamErrorCode } from '../../src/upstreams/http.js'
import { createManualClock } from '../helpers/manual-clock.js'

const ORIGIN = 'https://upstream.example'
const post = (url = `${ORIGIN}/token`) => ({
  label: 'IMS',
  url,
  headers: { 'content-type': 'application/json' },
  body: '{}',
  redact: ['the-secret'],
})

function mock(): MockAgent {
  const agent = new MockAgent()
  agent.disableNetConnect()
  return agent
}

async function failure(p: Promise<unknown>): Promise<UpstreamError> {
  const err = await p.then(
    () => expect.unreachable('expected a failure'),
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(UpstreamError)
  return err as UpstreamError
}

async function serve(
  handler: Parameters<typeof createServer>[1],
): Promise<{ url: string; connections: () => number; close: () => Promise<unknown> }> {
  const server = createServer(handler)
  let connections = 0
  server.on('connection', () => connections++)
  onTestFinished(async () => {
    server.closeAllConnections()
    await new Promise((r) => server.close(r))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections: () => connections,
    close: () => new Promise((r) => server.close(r)),
  }
}

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-01-01T00:00:00Z')
  it('reads delta-seconds, capped at 10 minutes', () => {
    expect(parseRetryAfter('120', now)).toBe(120_000)
    expect(parseRetryAfter(' 0 ', now)).toBe(0)
    // Capped at the longest rest the broker takes (10 min), like the brake it feeds.
    expect(parseRetryAfter('99999', now)).toBe(600_000)
    expect(parseRetryAfter(['7', '9'], now)).toBe(7_000)
  })
  it('reads the three HTTP-date forms, as GMT, capped, never negative', () => {
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30_000)
    expect(parseRetryAfter('Thursday, 01-Jan-26 00:01:00 GMT', now)).toBe(60_000)
    expect(parseRetryAfter('Thu Jan  1 00:00:45 2026', now)).toBe(45_000)
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now)).toBe(0)
    expect(parseRetryAfter('Fri, 02 Jan 2026 00:00:00 GMT', now)).toBe(600_000)
  })
  it('ignores garbage', () => {
    for (const v of [undefined, '', 'soon', '-5', '1.5', '1e3', 'Thu, garbage', '2026-01-01T00:00:30Z']) {
      expect(parseRetryAfter(v, now)).toBeUndefined()
    }
  })
})

describe('upstreamErrorCode', () => {
  it('takes the IMS error or the EQP code, only when it is a plain identifier', () => {
    expect(upstreamErrorCode('{"error":"invalid_client","error_description":"x y z"}', [])).toBe(
      'invalid_client',
    )
    expect(upstreamErrorCode('{"code":"401","message":"nope"}', [])).toBe('401')
    expect(upstreamErrorCode('{"code":403}', [])).toBe('403')
    expect(upstreamErrorCode('{"error":"has spaces <b>"}', [])).toBeUndefined()
    expect(upstreamErrorCode('{"error":"a\\nb"}', [])).toBeUndefined()
    // Too long is dropped whole, never cut: a cut could keep the start of an echoed secret.
    expect(upstreamErrorCode(`{"error":"${'x'.repeat(65)}"}`, [])).toBeUndefined()
    expect(upstreamErrorCode(`{"error":"${'x'.repeat(64)}"}`, [])).toBe('x'.repeat(64))
    expect(upstreamErrorCode('<html>', [])).toBeUndefined()
    expect(upstreamErrorCode(undefined, [])).toBeUndefined()
  })
  it('drops a code that echoes the secret', () => {
    expect(upstreamErrorCode('{"error":"bad-the-secret"}', ['the-secret'])).toBeUndefined()
  })
})

describe('postForJson classification', () => {
  it('returns parsed JSON for 2xx', async () => {
    const agent = mock()
    agent.get(ORIGIN).intercept({ path: '/token', method: 'POST' }).reply(200, { a: 1 })
    await expect(postForJson(post(), { dispatcher: agent, timeoutMs: 1000 })).resolves.toEqual({ a: 1 })
  })

  it.each([400, 401, 403])(
    '%i is rejected, with the sanitized upstream code and nothing else',
    async (status) => {
      const agent = mock()
      agent
        .get(ORIGIN)
        .intercept({ path: '/token', method: 'POST' })
        .reply(status, { error: 'invalid_client', error_description: 'secret the-secret is wrong' })
      const err = await failure(postForJson(post(), { dispatcher: agent, timeoutMs: 1000 }))
      expect(err.reason).toBe('rejected')
      expect(err.status).toBe(status)
      expect(err.message).toBe(`IMS token request rejected (HTTP ${status}, invalid_client)`)
    },
  )

  it.each([429, 500, 502, 503, 504, 302, 404, 418])('%i is unavailable', async (status) => {
    const agent = mock()
    agent.get(ORIGIN).intercept({ path: '/token', method: 'POST' }).reply(status, 'oops the-secret')
    const err = await failure(postForJson(post(), { dispatcher: agent, timeoutMs: 1000 }))
    expect(err.reason).toBe('unavailable')
    expect(err.status).toBe(status)
    expect(err.retryAfterMs).toBeUndefined()
    expect(err.message).toBe(`IMS token endpoint unavailable (HTTP ${status})`)
  })

  it('passes Retry-After on', async () => {
    const agent = mock()
    const pool = agent.get(ORIGIN)
    pool.intercept({ path: '/token', method: 'POST' }).reply(429, '', { headers: { 'retry-after': '30' } })
    pool
      .intercept({ path: '/token', method: 'POST' })
      .reply(503, '', { headers: { 'retry-after': 'tomorrow' } })
    const limited = await failure(postForJson(post(), { dispatcher: agent, timeoutMs: 1000 }))
    expect(limited.retryAfterMs).toBe(30_000)
    const garbage = await failure(postForJson(post(), { dispatcher: agent, timeoutMs: 1000 }))
    expect(garbage.retryAfterMs).toBeUndefined()
  })

  it('reads an HTTP-date Retry-After against the clock it is given', async () => {
    const agent = mock()
    const at = Date.parse('2026-01-01T00:00:00Z')
    agent
      .get(ORIGIN)
      .intercept({ path: '/token', method: 'POST' })
      .reply(503, '', { headers: { 'retry-after': 'Thu, 01 Jan 2026 00:00:45 GMT' } })
    const clock = createManualClock(at)
    const err = await failure(postForJson(post(), { dispatcher: agent, timeoutMs: 1000, clock }))
    expect(err.retryAfterMs).toBe(45_000)
  })

  it('a 2xx that is not JSON, or too large, is malformed', async () => {
    const agent = mock()
    const pool = agent.get(ORIGIN)
    pool.intercept({ path: '/token', method: 'POST' }).reply(200, '<html>the-secret</html>')
    pool.intercept({ path: '/token', method: 'POST' }).reply(200, `"${'x'.repeat(MAX_BODY_BYTES)}"`)
    const html = await failure(postForJson(post(), { dispatcher: agent, timeoutMs: 1000 }))
    expect(html.reason).toBe('malformed')
    expect(html.message).toBe('IMS token answer malformed: answer is not JSON')
    const big = await failure(postForJson(post(), { dispatcher: agent, timeoutMs: 1000 }))
    expect(big.reason).toBe('malformed')
    expect(big.message).toMatch(/larger than 65536 bytes/)
  })

  it('a connection error is network, with the error code only', async () => {
    const agent = mock()
    const refused = Object.assign(new Error('connect ECONNREFUSED 10.1.2.3:443 the-secret'), {
      code: 'ECONNREFUSED',
    })
    agent.get(ORIGIN).intercept({ path: '/token', method: 'POST' }).replyWithError(refused)
    const err = await failure(postForJson(post(), { dispatcher: agent, timeoutMs: 1000 }))
    expect(err.reason).toBe('network')
    expect(err.message).toBe('IMS token request failed: network error (ECONNREFUSED)')
  })
})

describe('postForJson over real sockets', () => {
  it('connection refused is network', async () => {
    const { url, close } = await serve(() => {})
    await close()
    const dispatcher = new Agent()
    const err = await failure(postForJson(post(`${url}/token`), { dispatcher, timeoutMs: 1000 }))
    expect(err.reason).toBe('network')
    await dispatcher.close()
  })

  it('no headers within timeoutMs is timeout', async () => {
    const { url } = await serve(() => {})
    const dispatcher = new Agent()
    const started = Date.now()
    const err = await failure(postForJson(post(`${url}/token`), { dispatcher, timeoutMs: 200 }))
    expect(err.reason).toBe('timeout')
    expect(err.message).toBe('IMS token request timed out after 200 ms')
    expect(Date.now() - started).toBeLessThan(2000)
    await dispatcher.destroy()
  })

  it('a body that never ends within timeoutMs is timeout', async () => {
    const { url } = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.write('{"access_token":')
    })
    const dispatcher = new Agent()
    const err = await failure(postForJson(post(`${url}/token`), { dispatcher, timeoutMs: 200 }))
    expect(err.reason).toBe('timeout')
    await dispatcher.destroy()
  })

  it('a caller abort rejects with the caller reason, not an upstream failure', async () => {
    const { url } = await serve(() => {})
    const dispatcher = new Agent()
    const ctl = new AbortController()
    const reason = new Error('shutting down')
    setTimeout(() => ctl.abort(reason), 20)
    await expect(postForJson(post(`${url}/token`), { dispatcher, timeoutMs: 5000 }, ctl.signal)).rejects.toBe(
      reason,
    )
    await dispatcher.destroy()
  })

  it('consumes every small error body: one kept-alive connection serves many failures', async () => {
    let n = 0
    const { url, connections } = await serve((_req, res) => {
      n++
      res.writeHead(n % 2 === 0 ? 503 : 401, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ error: 'temporarily_unavailable', pad: 'p'.repeat(20_000) }))
    })
    const dispatcher = new Agent({ connections: 1, keepAliveTimeout: 10_000 })
    for (let i = 0; i < 30; i++) {
      const err = await failure(postForJson(post(`${url}/token`), { dispatcher, timeoutMs: 1000 }))
      expect(err.reason).toBe(i % 2 === 0 ? 'rejected' : 'unavailable')
    }
    expect(connections()).toBe(1)
    await dispatcher.close()
  })

  it('never leaves a large error body unread: sequential failures on one connection do not stall', async () => {
    // Far beyond what undici buffers by itself: an unread body would hold the only connection.
    const huge = 'x'.repeat(2 * 1024 * 1024)
    const { url } = await serve((_req, res) => {
      res.writeHead(503, { 'content-type': 'text/plain' })
      res.end(huge)
    })
    const dispatcher = new Agent({ connections: 1 })
    for (let i = 0; i < 10; i++) {
      const err = await failure(postForJson(post(`${url}/token`), { dispatcher, timeoutMs: 1000 }))
      expect(err.reason).toBe('unavailable')
    }
    await dispatcher.close()
  })

  it('an oversized answer is cut off, and the next request still goes through', async () => {
    let n = 0
    const { url } = await serve((_req, res) => {
      n++
      res.writeHead(200, { 'content-type': 'application/json' })
      if (n === 1) res.end(`"${'x'.repeat(MAX_BODY_BYTES * 4)}"`)
      else res.end('{"ok":true}')
    })
    const dispatcher = new Agent({ connections: 1 })
    const err = await failure(postForJson(post(`${url}/token`), { dispatcher, timeoutMs: 1000 }))
    expect(err.reason).toBe('malformed')
    await expect(postForJson(post(`${url}/token`), { dispatcher, timeoutMs: 1000 })).resolves.toEqual({
      ok: true,
    })
    await dispatcher.close()
  })
})
