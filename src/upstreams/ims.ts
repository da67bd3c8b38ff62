import type { ImsCredential } from '../core/credential.js'
import type { Grant, Mint } from '../core/grant.js'
import { postForJson, type UpstreamDeps } from './http.js'
import { AnswerReader } from './validate.js'

const LABEL = 'IMS'

/** Adobe IMS client_credentials grant: one form POST to `{baseUrl}/ims/token/v3` per call. */
export function createImsMint(cred: ImsCredential, deps: UpstreamDeps): Mint {
  const url = `${cred.baseUrl}/ims/token/v3`
  return async (signal) => {
    const form = new URLSearchParams({
      client_id: cred.clientId,
      client_secret: cred.clientSecret,
      grant_type: 'client_credentials',
    })
    if (cred.scopes.length > 0) form.set('scope', cred.scopes.join(','))
    const answer = await postForJson(
      {
        label: LABEL,
        url,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form.toString(),
        redact: [cred.clientSecret],
      },
      deps,
      signal,
    )
    return readImsGrant(answer)
  }
}

export function readImsGrant(answer: unknown): Grant {
  const r = new AnswerReader(LABEL, answer)
  const accessToken = r.token('access_token')
  const expiresIn = r.expiresIn('expires_in')
  const tokenType = (r.optionalString('token_type') || 'bearer').toLowerCase()
  return { accessToken, tokenType, expiresIn }
}
