import { randomBytes } from 'node:crypto'
import type { AclUser } from '../../tools/redis-topology.js'

/**
 * The broker's ACL user with exactly the rules docs/fleet.md gives operators (keys and channels
 * under the prefix, the commands the store and ioredis send), so the topologies that use it keep
 * those docs true. The password is a canary: no log line or error may carry it.
 */
export const documentedAcl = (prefixPattern = 'test:*'): AclUser => ({
  username: 'token-broker',
  password: `pw-CANARY-${randomBytes(6).toString('hex')}`,
  rules: [
    `~${prefixPattern}`,
    `&${prefixPattern}`,
    '+@read',
    '+@write',
    '+@scripting',
    '+@pubsub',
    '+@connection',
    '+time',
    '+info',
    '+role',
    '+cluster|slots',
    '+cluster|info',
  ],
})
