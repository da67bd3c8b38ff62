import { readFileSync } from 'node:fs'
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import Fastify, { type FastifyInstance, type InjectOptions, type LightMyRequestResponse } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import YAML from 'yaml'
import app, { serverOptions } from '../../src/app.js'
import * as httpErrors from '../../src/http/errors.js'
import { CredentialParams, RefreshBody, TokenQuery } from '../../src/http/schemas.js'
import type { Simulator } from '../../src/simulator/server.js'
import {
  auth,
  baseEnv,
  brokerDocument,
  buildBroker,
  EQP_APP_ID,
  IMS_CLIENT_ID,
  SECRETS,
  startSimulator,
  writeConfig,
} from '../helpers/broker.js'

// ---- the document ----------------------------------------------------------------------------

// biome-ignore lint/suspicious/noExplicitAny: parsed YAML; its shape is what these tests check
type Json = Record<string, any>

const DOC_ID = 'openapi.yaml'
const doc: Json = YAML.parse(readFileSync(new URL('../../openapi.yaml', import.meta.url), 'utf8'))
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const

/** A JSON pointer (as a URI fragment) from raw segments. */
const pointer = (...segments: string[]) =>
  `#/${segments.map((s) => encodeURIComponent(s.replaceAll('~', '~0').replaceAll('/', '~1'))).join('/')}`

interface Operation {
  method: string
  path: string
  op: Json
  where: string
}

const operations: Operation[] = Object.entries(doc.paths as Json).flatMap(([path, item]) =>
  METHODS.filter((m) => item[m]).map((m) => ({
    method: m,
    path,
    op: item[m],
    where: pointer('paths', path, m),
  })),
)

const templateRegex = (path: string) =>
  new RegExp(`^${path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+')}$`)

function operationFor(method: string, url: string): Operation | undefined {
  const pathname = url.split('?')[0]!
  return operations.find((o) => o.method === method.toLowerCase() && templateRegex(o.path).test(pathname))
}

// ---- schemas ---------------------------------------------------------------------------------

const ajv = new Ajv2020({ strict: true, allErrors: true })
addFormats.default(ajv)
// The document's top-level fields are not schema keywords: Ajv compiles only the fragments it is
// pointed at. `discriminator` is an annotation for code generators; `oneOf` does the validating.
ajv.addVocabulary([
  'openapi',
  'info',
  'jsonSchemaDialect',
  'servers',
  'paths',
  'webhooks',
  'components',
  'security',
  'tags',
  'externalDocs',
  'discriminator',
])
ajv.addSchema(doc, DOC_ID)

function schemaAt(where: string): ValidateFunction {
  const validate = ajv.getSchema(`${DOC_ID}${where}`)
  if (!validate) throw new Error(`no schema at ${where}`)
  return validate
}

function expectValid(validate: ValidateFunction, value: unknown, what: string) {
  const ok = validate(value)
  expect(ok ? [] : ajv.errorsText(validate.errors, { separator: '\n' }).split('\n'), what).toEqual([])
}

// ---- conformance of one answer ---------------------------------------------------------------

/** Every (METHOD path status) the tests produced, to prove each documented answer was exercised. */
const exercised = new Set<string>()
const key = (method: string, path: string, status: number | string) =>
  `${method.toUpperCase()} ${path} ${status}`

/** Asserts the answer is documented for its operation, and its body and headers match the document. */
function conforms(res: LightMyRequestResponse, method: string, url: string) {
  const found = operationFor(method, url)
  const what = `${method} ${url} → ${res.statusCode} ${res.body.slice(0, 300)}`
  if (!found) {
    // Unrouted: the one answer the broker gives is 404 NOT_FOUND in the common error shape.
    expect(res.statusCode, what).toBe(404)
    expectValid(schemaAt(pointer('components', 'schemas', 'Error')), res.json(), what)
    expect(res.json().code, what).toBe('NOT_FOUND')
    expect(res.headers['cache-control'], what).toBe('no-store')
    return
  }
  const status = String(res.statusCode)
  expect(Object.keys(found.op.responses), `${what}: status not documented`).toContain(status)
  const where = `${found.where}/responses/${status}`
  const response = found.op.responses[status] as Json

  // The document promises every header it lists on an answer is sent.
  for (const [name, header] of Object.entries((response.headers ?? {}) as Json)) {
    const value = res.headers[name.toLowerCase()]
    expect(value, `${what}: header ${name}`).toBeDefined()
    const type = header.schema?.type
    const typed =
      (type === 'integer' || type === 'number') && /^-?\d+(\.\d+)?$/.test(String(value))
        ? Number(value)
        : value
    expectValid(schemaAt(`${where}/headers/${name}/schema`), typed, `${what}: header ${name}=${value}`)
  }

  const contentType = String(res.headers['content-type'] ?? '')
    .split(';')[0]!
    .trim()
  expect(Object.keys(response.content ?? {}), `${what}: content type`).toContain(contentType)
  const body = contentType === 'application/json' ? res.json() : res.body
  expectValid(
    schemaAt(`${where}/content/${encodeURIComponent(contentType.replace('/', '~1'))}/schema`),
    body,
    what,
  )
  exercised.add(key(found.method, found.path, status))
}

async function call(server: FastifyInstance, opts: InjectOptions & { url: string }) {
  const res = await server.inject(opts)
  conforms(res, opts.method ?? 'GET', opts.url)
  return res
}

/** A JSON body sent with the all-credentials key. */
const jsonBody = (payload: string) => ({
  headers: { 'content-type': 'application/json', ...auth(SECRETS.keyAll) },
  payload,
})
const OUTSIDE = '203.0.113.9'

// ---- the document on its own -----------------------------------------------------------------

describe('openapi.yaml', () => {
  it('is OpenAPI 3.1 with the basics in place', () => {
    expect(doc.openapi).toBe('3.1.0')
    expect(doc.info?.title).toBeTypeOf('string')
    expect(doc.info?.version).toBeTypeOf('string')
    expect(doc.components?.securitySchemes?.clientKey).toMatchObject({ type: 'http', scheme: 'bearer' })
    const ids = operations.map((o) => o.op.operationId)
    expect(new Set(ids).size, 'unique operationIds').toBe(ids.length)
  })

  it('compiles every schema under strict Ajv (2020-12)', () => {
    for (const name of Object.keys(doc.components.schemas)) {
      expect(() => schemaAt(pointer('components', 'schemas', name)), name).not.toThrow()
    }
    for (const { where, op } of operations) {
      for (const [status, response] of Object.entries(op.responses as Json)) {
        for (const media of Object.keys(response.content ?? {})) {
          const at = `${where}/responses/${status}/content/${encodeURIComponent(media.replace('/', '~1'))}/schema`
          expect(() => schemaAt(at), at).not.toThrow()
        }
      }
    }
  })

  it('declares every path template parameter, and security only on /v1', () => {
    for (const { path, op, method } of operations) {
      const item = doc.paths[path] as Json
      const declared = [...(item.parameters ?? []), ...(op.parameters ?? [])]
        .filter((p: Json) => p.in === 'path')
        .map((p) => p.name)
      const inTemplate = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1])
      expect(declared.sort(), `${method} ${path}`).toEqual(inTemplate.sort())
      if (path.startsWith('/v1/')) expect(op.security, `${method} ${path}`).toEqual([{ clientKey: [] }])
      else expect(op.security, `${method} ${path}`).toEqual([])
      expect(Object.keys(op.responses), `${method} ${path} documents 403`).toContain('403')
    }
  })

  it('describes requests exactly as src/http/schemas.ts validates them', () => {
    const get = operations.find((o) => o.op.operationId === 'getToken')!.op
    const param = (name: string) => get.parameters.find((p: Json) => p.name === name)
    expect(param('credential')).toMatchObject({ in: 'path', required: true })
    expect(param('credential').schema.pattern).toBe(CredentialParams.properties.credential.pattern)
    const minTtl = param('min_ttl')
    const code = TokenQuery.properties.min_ttl
    expect(minTtl.in).toBe('query')
    expect([minTtl.schema.type, minTtl.schema.minimum, minTtl.schema.maximum]).toEqual([
      code.type,
      code.minimum,
      code.maximum,
    ])
    const refresh = operations.find((o) => o.op.operationId === 'refreshToken')!.op
    // No body, an empty body and null are all accepted: the body is optional.
    expect(refresh.requestBody.required).toBe(false)
    const [bodyObject, bodyNull] = refresh.requestBody.content['application/json'].schema.anyOf
    expect(bodyNull).toEqual({ type: 'null' })
    expect(bodyObject.additionalProperties).toBe(RefreshBody.anyOf[0].additionalProperties)
    const { type, minLength, maxLength } = RefreshBody.anyOf[0].properties.rejected_token
    expect(bodyObject.properties.rejected_token).toMatchObject({ type, minLength, maxLength })
  })

  it('lists every error code the broker sends', () => {
    type ErrorClass = new (...args: unknown[]) => { code: string }
    const codes = Object.values(httpErrors).flatMap((v) =>
      typeof v === 'function' ? [new (v as ErrorClass)('x', 'y').code] : [],
    )
    expect([...doc.components.schemas.Error.properties.code.enum].sort()).toEqual([...new Set(codes)].sort())
  })
})

// ---- registered routes versus documented operations -------------------------------------------

describe('routes', () => {
  let sim: Simulator
  let server: FastifyInstance
  const registered: string[] = []

  beforeAll(async () => {
    sim = await startSimulator()
    const { path, cleanup } = await writeConfig(brokerDocument(sim.url))
    server = Fastify({ ...serverOptions(), logger: false })
    server.addHook('onClose', cleanup)
    server.addHook('onRoute', (route) => {
      const url = route.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')
      for (const method of [route.method].flat()) if (method !== 'HEAD') registered.push(`${method} ${url}`)
    })
    await server.register(app, { env: baseEnv(path) })
    await server.ready()
  })
  afterAll(async () => {
    await server?.close()
    await sim?.close()
  })

  it('documents exactly the routes Fastify serves', () => {
    const documented = operations.map((o) => `${o.method.toUpperCase()} ${o.path}`)
    expect(registered.length).toBeGreaterThan(0)
    expect([...new Set(registered)].sort()).toEqual(documented.sort())
  })
})

// ---- the real app against the real simulator ----------------------------------------------------

describe('conformance: healthy upstream', () => {
  let sim: Simulator
  let server: FastifyInstance
  beforeAll(async () => {
    sim = await startSimulator()
    server = await buildBroker({ simUrl: sim.url })
  })
  afterAll(async () => {
    await server?.close()
    await sim?.close()
  })

  it('200: an IMS token, with X-API-Key', async () => {
    const res = await call(server, { url: '/v1/tokens/adobe-ims', headers: auth(SECRETS.keyAll) })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ type: 'ims', headers: { 'X-API-Key': IMS_CLIENT_ID } })
    const limited = await call(server, {
      url: '/v1/tokens/adobe-ims?min_ttl=60',
      headers: auth(SECRETS.keyIms),
    })
    expect(limited.statusCode).toBe(200)
  })

  it('200: an EQP token, with mage_id and Authorization alone', async () => {
    const res = await call(server, { url: '/v1/tokens/marketplace?min_ttl=0', headers: auth(SECRETS.keyAll) })
    expect(res.statusCode).toBe(200)
    expect(res.json().type).toBe('eqp')
    expect(Object.keys(res.json().headers)).toEqual(['Authorization'])
  })

  it('200: refresh with no body, an empty body, {}, null and a stale rejected_token', async () => {
    const url = '/v1/tokens/adobe-ims/refresh'
    const mints = sim.mints(IMS_CLIENT_ID)
    const bodies = [
      {},
      jsonBody(''),
      jsonBody('{}'),
      jsonBody('null'),
      jsonBody('{"rejected_token":"stale"}'),
    ]
    for (const extra of bodies) {
      const res = await call(server, { method: 'POST', url, headers: auth(SECRETS.keyAll), ...extra })
      expect(res.statusCode).toBe(200)
    }
    // All within 10 s of the warm-up mint, or with a token that is no longer current: no mint.
    expect(sim.mints(IMS_CLIENT_ID)).toBe(mints)
    const eqp = await call(server, {
      method: 'POST',
      url: '/v1/tokens/marketplace/refresh',
      headers: auth(SECRETS.keyAll),
    })
    expect(eqp.statusCode).toBe(200)
    expect(eqp.json().mage_id).toBeTypeOf('string')
  })

  it('200: the credentials each client may use', async () => {
    const all = await call(server, { url: '/v1/credentials', headers: auth(SECRETS.keyAll) })
    expect(all.statusCode).toBe(200)
    expect(
      all
        .json()
        .credentials.map((c: Json) => c.id)
        .sort(),
    ).toEqual(['adobe-ims', 'marketplace'])
    const one = await call(server, { url: '/v1/credentials', headers: auth(SECRETS.keyIms) })
    expect(one.json().credentials.map((c: Json) => c.id)).toEqual(['adobe-ims'])
  })

  it('200: healthz, readyz, metrics', async () => {
    expect((await call(server, { url: '/healthz' })).statusCode).toBe(200)
    const ready = await call(server, { url: '/readyz' })
    expect(ready.statusCode).toBe(200)
    expect(ready.json().status).toBe('ready')
    const metrics = await call(server, { url: '/metrics' })
    expect(metrics.statusCode).toBe(200)
    expect(metrics.headers['content-type']).toMatch(/^text\/plain/)
    expect(metrics.body).toContain('token_broker_mints_total')
  })

  it('400: malformed min_ttl, query, credential id and body; unreachable min_ttl', async () => {
    const get = ['min_ttl=abc', 'min_ttl=-1', 'min_ttl=86401', 'min_ttl=1.5', 'min_ttl=', 'foo=1']
    for (const query of get) {
      const res = await call(server, { url: `/v1/tokens/adobe-ims?${query}`, headers: auth(SECRETS.keyAll) })
      expect(res.statusCode, query).toBe(400)
    }
    for (const id of ['Adobe-IMS', '-x', 'a%2Fb', 'a'.repeat(65), '%C3%A9']) {
      const res = await call(server, { url: `/v1/tokens/${id}`, headers: auth(SECRETS.keyAll) })
      expect(res.statusCode, id).toBe(400)
      const post = await call(server, {
        method: 'POST',
        url: `/v1/tokens/${id}/refresh`,
        headers: auth(SECRETS.keyAll),
      })
      expect(post.statusCode, id).toBe(400)
    }
    const url = '/v1/tokens/adobe-ims/refresh'
    for (const payload of [
      '{',
      '[]',
      '"x"',
      '{"rejected_token":""}',
      '{"rejected_token":1}',
      '{"other":1}',
    ]) {
      const res = await call(server, { method: 'POST', url, ...jsonBody(payload) })
      expect(res.statusCode, payload).toBe(400)
    }
    const text = await call(server, {
      method: 'POST',
      url,
      headers: { 'content-type': 'text/plain', ...auth(SECRETS.keyAll) },
      payload: 'hello',
    })
    expect(text.statusCode).toBe(400)
    // The EQP token was minted seconds ago and lives 2 h: no mint can give 24 h (the 10 s rule).
    const unreachable = await call(server, {
      url: '/v1/tokens/marketplace?min_ttl=86400',
      headers: auth(SECRETS.keyAll),
    })
    expect(unreachable.statusCode).toBe(400)
    expect(unreachable.json().message).toMatch(/min_ttl/)
  })

  it('401: no key, an unknown key, a malformed header, on every /v1 route', async () => {
    const headers = [{}, auth('not-a-key'), { authorization: `Basic ${SECRETS.keyAll}` }]
    for (const h of headers) {
      for (const r of [
        { url: '/v1/tokens/adobe-ims' },
        { url: '/v1/tokens/nope' },
        { method: 'POST' as const, url: '/v1/tokens/adobe-ims/refresh' },
        { url: '/v1/credentials' },
      ]) {
        const res = await call(server, { ...r, headers: h })
        expect(res.statusCode, r.url).toBe(401)
      }
    }
  })

  it('403: a client outside its credential list; a source address outside the CIDRs, on every route', async () => {
    const own = await call(server, { url: '/v1/tokens/marketplace', headers: auth(SECRETS.keyIms) })
    expect(own.statusCode).toBe(403)
    const post = await call(server, {
      method: 'POST',
      url: '/v1/tokens/marketplace/refresh',
      headers: auth(SECRETS.keyIms),
    })
    expect(post.statusCode).toBe(403)
    for (const { method, path } of operations) {
      const url = path.replace('{credential}', 'adobe-ims')
      const res = await call(server, {
        method: method.toUpperCase() as 'GET',
        url,
        headers: auth(SECRETS.keyAll),
        remoteAddress: OUTSIDE,
      })
      expect(res.statusCode, `${method} ${url}`).toBe(403)
    }
  })

  it('404: an unknown credential (before the client list), an unknown route or method', async () => {
    for (const k of [SECRETS.keyAll, SECRETS.keyIms]) {
      const res = await call(server, { url: '/v1/tokens/nope', headers: auth(k) })
      expect(res.statusCode).toBe(404)
      expect(res.json().code).toBe('CREDENTIAL_NOT_FOUND')
      const post = await call(server, { method: 'POST', url: '/v1/tokens/nope/refresh', headers: auth(k) })
      expect(post.statusCode).toBe(404)
    }
    for (const r of [
      { url: '/nope' },
      { url: '/v2/tokens/adobe-ims' },
      { url: '/v1/tokens' },
      { method: 'DELETE' as const, url: '/v1/tokens/adobe-ims' },
      { method: 'GET' as const, url: '/v1/tokens/adobe-ims/refresh' },
      { method: 'POST' as const, url: '/healthz' },
    ]) {
      const res = await call(server, { ...r, headers: auth(SECRETS.keyAll) })
      expect(res.statusCode, r.url).toBe(404)
    }
  })

  it('429 with Retry-After: a seventh forced refresh of one credential within a minute', async () => {
    const url = '/v1/tokens/marketplace/refresh'
    const answers = []
    for (let i = 0; i < 7; i++) {
      const current = (
        await server.inject({ url: '/v1/tokens/marketplace', headers: auth(SECRETS.keyAll) })
      ).json()
      answers.push(
        await call(server, {
          method: 'POST',
          url,
          ...jsonBody(JSON.stringify({ rejected_token: current.access_token })),
        }),
      )
    }
    expect(answers.map((r) => r.statusCode)).toEqual([200, 200, 200, 200, 200, 200, 429])
    expect(answers[6]!.json().code).toBe('RATE_LIMITED')
  })

  it('413: a 2 MiB refresh body', async () => {
    const payload = JSON.stringify({ rejected_token: 'x'.repeat(2 * 1024 * 1024) })
    const res = await call(server, {
      method: 'POST',
      url: '/v1/tokens/adobe-ims/refresh',
      ...jsonBody(payload),
    })
    expect(res.statusCode).toBe(413)
  })
})

describe('conformance: Adobe refuses the secret', () => {
  let sim: Simulator
  let warm: FastifyInstance
  let cold: FastifyInstance
  beforeAll(async () => {
    sim = await startSimulator()
    warm = await buildBroker({ simUrl: sim.url })
    // A second broker whose warm-up is refused: it holds no token at all.
    sim.behave('*', { mode: 'reject' })
    cold = await buildBroker({ simUrl: sim.url })
  })
  afterAll(async () => {
    await warm?.close()
    await cold?.close()
    await sim?.close()
  })

  it('502: refresh with rejected_token equal to the current token', async () => {
    const current = await call(warm, { url: '/v1/tokens/adobe-ims', headers: auth(SECRETS.keyAll) })
    const res = await call(warm, {
      method: 'POST',
      url: '/v1/tokens/adobe-ims/refresh',
      ...jsonBody(JSON.stringify({ rejected_token: current.json().access_token })),
    })
    expect(res.statusCode).toBe(502)
    // The default min_ttl still gets the held token.
    expect(
      (await call(warm, { url: '/v1/tokens/adobe-ims', headers: auth(SECRETS.keyAll) })).statusCode,
    ).toBe(200)
  })

  it('502: no token held, with and without min_ttl, on GET and refresh', async () => {
    for (const url of ['/v1/tokens/adobe-ims', '/v1/tokens/marketplace?min_ttl=30']) {
      const res = await call(cold, { url, headers: auth(SECRETS.keyAll) })
      expect(res.statusCode, url).toBe(502)
    }
    const post = await call(cold, {
      method: 'POST',
      url: '/v1/tokens/marketplace/refresh',
      headers: auth(SECRETS.keyAll),
    })
    expect(post.statusCode).toBe(502)
  })

  it('200: readiness and the credential list report the failure', async () => {
    const ready = await call(cold, { url: '/readyz' })
    expect(ready.statusCode).toBe(200)
    expect(ready.json().credentials['adobe-ims']).toMatchObject({
      state: 'failing',
      last_error: { code: 'UPSTREAM_REJECTED' },
    })
    const list = await call(cold, { url: '/v1/credentials', headers: auth(SECRETS.keyAll) })
    expect(list.json().credentials.every((c: Json) => c.state === 'failing' && c.last_error !== null)).toBe(
      true,
    )
  })
})

describe('conformance: Adobe is unavailable', () => {
  let sim: Simulator
  let server: FastifyInstance
  beforeAll(async () => {
    sim = await startSimulator()
    // Retry-After: 0 keeps the in-mint retries immediate.
    sim.behave(IMS_CLIENT_ID, { mode: 'error5xx', retryAfter: 0 })
    sim.behave(EQP_APP_ID, { mode: 'rate_limited', retryAfter: 0 })
    server = await buildBroker({ simUrl: sim.url })
  })
  afterAll(async () => {
    await server?.close()
    await sim?.close()
  })

  it('503 with Retry-After: GET and refresh, IMS (5xx) and EQP (429)', async () => {
    for (const id of ['adobe-ims', 'marketplace']) {
      for (const r of [
        { url: `/v1/tokens/${id}` },
        { url: `/v1/tokens/${id}?min_ttl=10` },
        { method: 'POST' as const, url: `/v1/tokens/${id}/refresh` },
      ]) {
        const res = await call(server, { ...r, headers: auth(SECRETS.keyAll) })
        expect(res.statusCode, r.url).toBe(503)
        expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1)
      }
    }
  })
})

describe('conformance: readiness before warm-up and while draining', () => {
  let sim: Simulator
  let server: FastifyInstance
  beforeAll(async () => {
    sim = await startSimulator()
    sim.behave('*', { mode: 'hang' })
    server = await buildBroker({ simUrl: sim.url, warm: false, env: { UPSTREAM_TIMEOUT_MS: '60000' } })
  })
  afterAll(async () => {
    await sim?.close()
    await server?.close()
  })

  it('503: starting, then draining, with the same body schema as 200', async () => {
    const starting = await call(server, { url: '/readyz' })
    expect(starting.statusCode).toBe(503)
    expect(starting.json().status).toBe('starting')
    expect(Object.values(starting.json().credentials).every((c) => (c as Json).state === 'pending')).toBe(
      true,
    )
    server.draining = true
    const draining = await call(server, { url: '/readyz' })
    expect(draining.statusCode).toBe(503)
    expect(draining.json().status).toBe('draining')
  })
})

describe('coverage', () => {
  it('exercised every documented answer (500 aside: nothing healthy produces it)', () => {
    const documented = operations.flatMap(({ method, path, op }) =>
      Object.keys(op.responses)
        .filter((s) => s !== '500')
        .map((s) => key(method, path, s)),
    )
    expect(documented.filter((d) => !exercised.has(d))).toEqual([])
  })
})
