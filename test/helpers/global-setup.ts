import type { TestProject } from 'vitest/node'
import { findRedis } from '../../tools/find-redis.js'

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string
  }
}

/** One real Redis for the whole run (see tools/find-redis.ts), handed to tests as `inject('redisUrl')`. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const redis = await findRedis()
  project.provide('redisUrl', redis.url)
  return redis.stop
}
