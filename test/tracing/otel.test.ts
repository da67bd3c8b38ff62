// Tracing with OTEL_EXPORTER_OTLP_ENDPOINT: spans exported over OTLP/HTTP (JSON) to a collector in
// the test, with the right parents, and no secret, key or token in anything sent.
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import type { Simulator } from '../../src/simulator/server.js'
import { buildBroker, IMS_CLIENT_ID, SECRETS, startSimulator } from '../helpers/broker.js'
import { shiftableClock } from '../helpers/manual-clock.js'
import { type ReceivedSpan, startOtlpReceiver } from '../helpers/otlp-receiver.js'
import { ALL, JSON_HEADERS, noJitter } from '../http/support.js'

let sim: Simulator
beforeAll(async () => {
  sim = await startSimulator()
})
afterAll(async () => {
  await sim.close()
})

const named = (spans: ReceivedSpan[], name: string) => spans.filter((s) => s.name === name)

describe('tracing over OTLP', () => {
  it('a span per /v1 request, per mint and per upstream request (under its mint); nothing secret', async () => {
    const receiver = await startOtlpReceiver()
    onTestFinished(() => receiver.close())
    sim.reset()
    const clock = shiftableClock()
    const app = await buildBroker({
      simUrl: sim.url,
      clock,
      random: noJitter,
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url },
    })
    const served: string[] = []
    try {
      const ok = await app.inject({ url: '/v1/tokens/adobe-ims', headers: ALL })
      expect(ok.statusCode).toBe(200)
      served.push(ok.json().access_token)
      expect(
        (await app.inject({ url: '/v1/tokens/adobe-ims', headers: { authorization: 'Bearer no' } }))
          .statusCode,
      ).toBe(401)
      clock.shift(11_000)
      const refreshed = await app.inject({
        method: 'POST',
        url: '/v1/tokens/adobe-ims/refresh',
        headers: { ...ALL, ...JSON_HEADERS },
        payload: JSON.stringify({ rejected_token: served[0] }),
      })
      expect(refreshed.statusCode).toBe(200)
      served.push(refreshed.json().access_token)
      clock.shift(11_000)
      sim.behave(IMS_CLIENT_ID, { mode: 'reject' })
      expect((await app.inject({ url: '/v1/tokens/adobe-ims?min_ttl=86395', headers: ALL })).statusCode).toBe(
        502,
      )
    } finally {
      sim.reset()
      // Closing sends what is buffered.
      await app.close()
    }
    const spans = receiver.spans

    // Requests: route, status, client, credential and outcome (the error code or OK).
    const requests = named(spans, 'GET /v1/tokens/:credential').map((s) => s.attributes)
    expect(requests).toContainEqual(
      expect.objectContaining({
        'http.route': '/v1/tokens/:credential',
        'http.response.status_code': 200,
        'token_broker.client': 'ops-tools',
        'token_broker.credential': 'adobe-ims',
        'token_broker.outcome': 'OK',
      }),
    )
    expect(requests).toContainEqual(
      expect.objectContaining({
        'http.response.status_code': 401,
        'token_broker.client': '',
        'token_broker.outcome': 'UNAUTHENTICATED',
      }),
    )
    expect(requests).toContainEqual(
      expect.objectContaining({
        'http.response.status_code': 502,
        'token_broker.outcome': 'UPSTREAM_REJECTED',
      }),
    )
    expect(named(spans, 'POST /v1/tokens/:credential/refresh')[0]?.attributes).toMatchObject({
      'token_broker.outcome': 'OK',
      'token_broker.credential': 'adobe-ims',
    })

    // Mints, with their reason and outcome; each upstream request is a child of its mint.
    const mints = named(spans, 'token_broker.mint')
    expect(
      mints
        .map((m) => [
          m.attributes['token_broker.credential'],
          m.attributes['token_broker.reason'],
          m.attributes['token_broker.outcome'],
        ])
        .sort(),
    ).toEqual([
      ['adobe-ims', 'min_ttl', 'rejected'],
      ['adobe-ims', 'rejected_token', 'success'],
      ['adobe-ims', 'warm-up', 'success'],
      ['marketplace', 'warm-up', 'success'],
    ])
    const upstream = named(spans, 'token_broker.upstream_request')
    expect(upstream).toHaveLength(4)
    for (const u of upstream) {
      const parent = mints.find((m) => m.spanId === u.parentSpanId)
      expect(parent, `the mint span of ${u.spanId}`).toBeDefined()
      expect(u.traceId).toBe(parent!.traceId)
      expect(u.attributes['token_broker.credential']).toBe(parent!.attributes['token_broker.credential'])
      expect(u.attributes['token_broker.outcome']).toBe(parent!.attributes['token_broker.outcome'])
    }
    const refused = upstream.find((u) => u.attributes['token_broker.outcome'] === 'rejected')!
    expect(refused.attributes['http.response.status_code']).toBe(400)
    expect(refused.status.code).toBe(2)
    for (const m of mints) expect(m.parentSpanId).toBeUndefined()
    expect(spans[0]?.resource['service.name']).toBe('token-broker')

    // Nothing sent carries a secret, a client key or a token.
    const sent = receiver.bodies.join('\n')
    for (const value of [...Object.values(SECRETS), ...served]) expect(sent).not.toContain(value)
  })
})
