/**
 * Calls Adobe's protected resources through token-broker with @token-broker/client, end to end,
 * against `npm run demo` (the broker and the Adobe simulator). Run it with the values the demo prints:
 *
 *   BROKER_URL=http://127.0.0.1:8080 BROKER_KEY=demo-key SIMULATOR_URL=http://127.0.0.1:<port> npm run example
 *
 * It never prints a key or a token. The last step has the simulator revoke the token in use, and
 * shows the client recovering: one refresh at the broker, one retry, success.
 */

import { createBrokerClient } from '@token-broker/client'
import { Agent, request } from 'undici'

const env = (name: string, fallback?: string): string => {
  const v = process.env[name] || fallback
  if (v === undefined) throw new Error(`${name} is required (npm run demo prints it)`)
  return v
}
const brokerUrl = env('BROKER_URL', 'http://127.0.0.1:8080')
const simulatorUrl = env('SIMULATOR_URL').replace(/\/+$/, '')
const imsCredential = env('IMS_CREDENTIAL', 'demo-ims')
const eqpCredential = env('EQP_CREDENTIAL', 'demo-eqp')

const broker = createBrokerClient({ url: brokerUrl, key: env('BROKER_KEY', 'demo-key') })
const say = (line: string) => process.stdout.write(`${line}\n`)

function expectStatus(what: string, status: number, wanted: number): void {
  say(`${what}: ${status}`)
  if (status !== wanted) throw new Error(`${what}: expected ${wanted}, got ${status}`)
}

try {
  // 1. IMS: broker.fetch() adds Authorization and X-API-Key.
  const ims = await broker.token(imsCredential)
  say(`${imsCredential}: an IMS token valid for ${ims.expires_in} s more`)
  const sample = await broker.fetch(imsCredential, `${simulatorUrl}/sample/v1/whoami`)
  expectStatus('GET /sample/v1/whoami through broker.fetch()', sample.status, 200)
  say(`  ${JSON.stringify(await sample.json())}`)

  // 2. EQP: the same through an undici dispatcher composed with the client's interceptor.
  const eqp = await broker.token(eqpCredential)
  const agent = new Agent().compose(broker.interceptor(eqpCredential))
  const profile = await request(`${simulatorUrl}/rest/v1/users/${eqp.mage_id}`, { dispatcher: agent })
  expectStatus(`GET /rest/v1/users/${eqp.mage_id} through the interceptor`, profile.statusCode, 200)
  say(`  ${JSON.stringify(await profile.body.json())}`)
  await agent.close()

  // 3. Adobe stops accepting the IMS token (here: the simulator revokes it). The client reports it
  //    to the broker (POST /v1/tokens/{credential}/refresh with rejected_token) and retries once.
  const revoke = await request(`${simulatorUrl}/__sim/revoke`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token: ims.access_token }),
  })
  await revoke.body.dump()
  say('the simulator revoked the IMS token in use')
  const retried = await broker.fetch(imsCredential, `${simulatorUrl}/sample/v1/whoami`)
  await retried.body?.cancel()
  const replaced = (await broker.token(imsCredential)).access_token !== ims.access_token
  expectStatus('GET /sample/v1/whoami after the revocation', retried.status, 200)
  say(`  recovered by one retry with a new token: ${replaced ? 'yes' : 'no'}`)
  if (!replaced) throw new Error('the token was not replaced')
} finally {
  await broker.close()
}
