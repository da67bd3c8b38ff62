import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { expect } from 'vitest'
import { auth, SECRETS } from '../helpers/broker.js'

/** The documented error shape (docs/api.md), exactly: these four fields and nothing else. */
export function expectError(res: LightMyRequestResponse, statusCode: number, code: string): void {
  expect(res.statusCode, res.body).toBe(statusCode)
  expect(res.headers['content-type']).toMatch(/^application\/json/)
  const body = res.json()
  expect(Object.keys(body).sort()).toEqual(['code', 'error', 'message', 'statusCode'])
  expect(body.statusCode).toBe(statusCode)
  expect(body.code).toBe(code)
  expect(typeof body.error).toBe('string')
  expect(body.error.length).toBeGreaterThan(0)
  expect(typeof body.message).toBe('string')
  expect(body.message.length).toBeGreaterThan(0)
}

/** No backoff waits between retry attempts inside one mint. */
export const noJitter = () => 0

export const ALL = auth(SECRETS.keyAll)
export const IMS_ONLY = auth(SECRETS.keyIms)
export const JSON_HEADERS = { 'content-type': 'application/json' }

export interface TokenBody {
  credential: string
  type: 'ims' | 'eqp'
  token_type: string
  access_token: string
  expires_at: string
  expires_in: number
  mage_id?: string
  headers: Record<string, string>
}

export async function getToken(
  app: FastifyInstance,
  credential: string,
  query = '',
): Promise<{ res: LightMyRequestResponse; body: TokenBody }> {
  const res = await app.inject({ url: `/v1/tokens/${credential}${query}`, headers: ALL })
  return { res, body: res.json() as TokenBody }
}

export async function refresh(
  app: FastifyInstance,
  credential: string,
  body?: unknown,
): Promise<{ res: LightMyRequestResponse; body: TokenBody }> {
  const res = await app.inject({
    method: 'POST',
    url: `/v1/tokens/${credential}/refresh`,
    headers: body === undefined ? ALL : { ...ALL, ...JSON_HEADERS },
    ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
  })
  return { res, body: res.json() as TokenBody }
}

/** The Retry-After header as whole seconds (fails the test when absent or not a positive integer). */
export function retryAfterSeconds(res: LightMyRequestResponse): number {
  const value = res.headers['retry-after']
  expect(value, 'Retry-After header').toBeDefined()
  expect(String(value)).toMatch(/^[1-9]\d*$/)
  return Number(value)
}
