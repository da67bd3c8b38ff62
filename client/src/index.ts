export type { BrokerToken } from './broker-api.js'
export {
  type BrokerClient,
  type BrokerClientOptions,
  createBrokerClient,
  type TokenOptions,
} from './client.js'
export { BrokerError, type BrokerErrorCode } from './errors.js'
