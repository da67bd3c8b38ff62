import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Finds a real Redis once for the whole run (REDIS_URL, testcontainers, or redis-server on PATH)
    // and hands its URL to the tests through `inject('redisUrl')`.
    globalSetup: ['test/helpers/global-setup.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    pool: 'forks',
  },
})
