import type { EqpCredential } from '../core/credential.js'
import type { Grant, Mint } from '../core/grant.js'
import { tokenEndpoint, type UpstreamDeps } from './http.js'
import { AnswerReader } from './validate.js'

const LABEL = 'EQP'
const endpoint = tokenEndpoint(LABEL, readEqpGrant)

/** Adobe Commerce Marketplace (EQP) session grant: `POST {baseUrl}/rest/v1/app/session/token`. */
export function createEqpMint(cred: EqpCredential, deps: UpstreamDeps): Mint {
  // Built once per credential and secret: neither the header nor the body ever changes.
  const body = JSON.stringify({ grant_type: 'session', expires_in: cred.expiresIn })
  return endpoint(deps, cred.appSecrets, (secret) => ({
    url: `${cred.baseUrl}/rest/v1/app/session/token`,
    headers: {
      authorization: `Basic ${Buffer.from(`${cred.appId}:${secret}`, 'utf8').toString('base64')}`,
      'content-type': 'application/json',
    },
    body,
  }))
}

export function readEqpGrant(answer: unknown): Grant {
  const r = new AnswerReader(LABEL, answer)
  const accessToken = r.requiredString('ust')
  const expiresIn = r.expiresIn('expires_in')
  const mageId = r.requiredString('mage_id')
  return r.grant(
    { accessToken, tokenType: 'bearer', mageId, expiresIn },
    { accessToken: 'ust', tokenType: 'token_type', mageId: 'mage_id' },
  )
}
