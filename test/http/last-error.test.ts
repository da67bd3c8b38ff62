import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, expect, it, onTestFinished } from 'vitest'
import { auth, brokerDocument, buildBroker, SECRETS } from '../helpers/broker.js'

let upstream: Server | undefined
afterEach(async () => {
  await new Promise((resolve) => upstream?.close(resolve) ?? resolve(undefined))
  upstream = undefined
})

/** An upstream that refuses every token request and echoes the posted secret back as its error code. */
async function echoingUpstream(): Promise<string> {
  upstream = createServer((req, res) => {
    let body = ''
    req.on('data', (d: Buffer) => {
      body += d.toString()
    })
    req.on('end', () => {
      const secret = new URLSearchParams(body).get('client_secret') ?? ''
      res.writeHead(401, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ error: secret, error_description: `the secret ${secret} is wrong` }))
    })
  })
  await new Promise<void>((resolve) => upstream!.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`
}

it('never shows any part of a secret upstream echoes in its error, however long, in /readyz or /v1/credentials', async () => {
  // Plain characters only, longer than the 64 an error code may have: the case a cut used to leak.
  const secret = `${'S3cr3t'.repeat(12)}-tail`
  const url = await echoingUpstream()
  const app = await buildBroker({
    simUrl: url,
    document: brokerDocument(url),
    env: { TEST_IMS_SECRET: secret },
  })
  onTestFinished(() => app.close())
  const ready = await app.inject({ url: '/readyz' })
  const creds = await app.inject({ url: '/v1/credentials', headers: auth(SECRETS.keyAll) })
  for (const body of [ready.body, creds.body]) {
    // No window of the secret at all, not even its first characters.
    for (let i = 0; i + 8 <= secret.length; i++) expect(body).not.toContain(secret.slice(i, i + 8))
  }
  // In the broker's own words: the classification and the status, no upstream text.
  const lastError = ready.json().credentials['adobe-ims'].last_error
  expect(lastError.code).toBe('UPSTREAM_REJECTED')
  expect(lastError.message).toBe('Adobe IMS: token request rejected (HTTP 401)')
})
