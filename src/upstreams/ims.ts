import type { ImsCredential } from '../core/credential.js'
import type { Grant, Mint } from '../core/grant.js'
import { tokenEndpoint, type UpstreamDeps } from './http.js'
import { AnswerReader } from './validate.js'

const LABEL = 'IMS'
const endpoint = tokenEndpoint(LABEL, readImsGrant)

/** Adobe IMS client_credentials grant: one form POST to `{baseUrl}/ims/token/v3` per call. */
export function createImsMint(cred: ImsCredential, deps: UpstreamDeps): Mint {
  // Built once per credential: the form never changes.
  const form = new URLSearchParams({
    client_id: cred.clientId,
    client_secret: cred.clientSecret,
    grant_type: 'client_credentials',
  })
  if (cred.scopes.length > 0) form.set('scope', cred.scopes.join(','))
  return endpoint(deps, {
    url: `${cred.baseUrl}/ims/token/v3`,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form.toString(),
    redact: [cred.clientSecret],
  })
}

export function readImsGrant(answer: unknown): Grant {
  const r = new AnswerReader(LABEL, answer)
  const accessToken = r.token('access_token')
  const expiresIn = r.expiresIn('expires_in')
  const tokenType = (r.optionalString('token_type') || 'bearer').toLowerCase()
  return { accessToken, tokenType, expiresIn }
}
