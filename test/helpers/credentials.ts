import type { EqpCredential, ImsCredential } from '../../src/core/credential.js'

/** A secret no error message, log line or answer may ever contain. */
export const CANARY = 'canary-s3cret-7f3a9c1e'

/** The one builder of credentials for tests: a valid IMS credential, with `over` applied. */
export function imsCredential(over: Partial<ImsCredential> = {}): ImsCredential {
  return {
    id: 'adobe-ims',
    type: 'ims',
    environment: 'stage',
    baseUrl: 'https://ims.example.test',
    clientId: 'client-abc',
    clientSecrets: [CANARY],
    scopes: ['openid', 'AdobeID', 'read_organizations'],
    ...over,
  }
}

/** A valid EQP credential, with `over` applied. */
export function eqpCredential(over: Partial<EqpCredential> = {}): EqpCredential {
  return {
    id: 'marketplace',
    type: 'eqp',
    environment: 'sandbox',
    baseUrl: 'https://eqp.example.test',
    appId: 'AQ17NZ49WC',
    appSecrets: [CANARY],
    expiresIn: 3600,
    ...over,
  }
}
