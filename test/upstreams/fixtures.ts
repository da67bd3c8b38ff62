import type { EqpCredential, ImsCredential } from '../../src/core/credential.js'
import { eqpCredential, imsCredential } from '../helpers/credentials.js'

export { CANARY } from '../helpers/credentials.js'

export const imsCred = (baseUrl: string, over: Partial<ImsCredential> = {}): ImsCredential =>
  imsCredential({ baseUrl, ...over })

export const eqpCred = (baseUrl: string, over: Partial<EqpCredential> = {}): EqpCredential =>
  eqpCredential({ baseUrl, ...over })
