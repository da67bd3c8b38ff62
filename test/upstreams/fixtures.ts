import type { EqpCredential, ImsCredential } from '../../src/core/credential.js'

/** A secret no error message may ever contain. */
export const CANARY = 'canary-s3cret-7f3a9c1e'

export function imsCred(baseUrl: string, over: Partial<ImsCredential> = {}): ImsCredential {
  return {
    id: 'adobe-ims',
    type: 'ims',
    environment: 'stage',
    baseUrl,
    clientId: 'client-abc',
    clientSecret: CANARY,
    clientSecrets: [over.clientSecret ?? CANARY],
    scopes: ['openid', 'AdobeID', 'read_organizations'],
    ...over,
  }
}

export function eqpCred(baseUrl: string, over: Partial<EqpCredential> = {}): EqpCredential {
  return {
    id: 'marketplace',
    type: 'eqp',
    environment: 'sandbox',
    baseUrl,
    appId: 'AQ17NZ49WC',
    appSecret: CANARY,
    appSecrets: [over.appSecret ?? CANARY],
    expiresIn: 3600,
    ...over,
  }
}
