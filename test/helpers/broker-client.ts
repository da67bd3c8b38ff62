import { onTestFinished } from 'vitest'
import { type BrokerClient, type BrokerClientOptions, createBrokerClient } from '../../client/src/index.js'
import { SECRETS } from './broker.js'

/** A client of the broker at `url` (key: the all-credentials canary), closed when the test ends. */
export function brokerClient(url: string, opts: Partial<BrokerClientOptions> = {}): BrokerClient {
  const client = createBrokerClient({ url, key: SECRETS.keyAll, ...opts })
  onTestFinished(() => client.close())
  return client
}
