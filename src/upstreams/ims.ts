import type { ImsCredential } from '../core/credential.js'
import type { Grant, Mint } from '../core/grant.js'
import { tokenEndpoint, type UpstreamDeps } from './http.js'
import { AnswerReader } from './validate.js'

const LABEL = 'IMS'
const endpoint = tokenEndpoint(LABEL, readImsGrant)

/** Adobe IMS client_credentials grant: one form POST to `{baseUrl}/ims/token/v3` per call. */
export function createImsMint(cred: ImsCredential, deps: UpstreamDeps): Mint {
  // Built once per credential and secret: the forms never change.
  return endpoint(deps, cred.clientSecrets, (secret) => {
    const form = new URLSearchParams({
      client_id: cred.clientId,
      client_secret: secret,
      grant_type: 'client_credentials',
    })
    form.set('scope', cred.scopes.join(','))
    const headers = { 'content-type': 'application/x-www-form-urlencoded' }
    return { url: `${cred.baseUrl}/ims/token/v3`, headers, body: form.toString() }
  })
}

export function readImsGrant(answer: unknown): Grant {
  const r = new AnswerReader(LABEL, answer)
  const accessToken = r.requiredString('access_token')
  const expiresIn = r.expiresIn('expires_in')
  const tokenType = (r.optionalString('token_type') || 'bearer').toLowerCase()
  return r.grant(
    { accessToken, tokenType, expiresIn },
    { accessToken: 'access_token', tokenType: 'token_type', mageId: 'mage_id' },
  )
}
