import { configDefaults, defineConfig } from 'vitest/config'

/**
 * Files that start whole Redis topologies (Sentinel groups, Clusters, TLS) and kill masters: they
 * run after the rest, so their dozens of processes never starve the timing of the other files.
 */
const TOPOLOGIES = [
  'test/store/redis-{sentinel,cluster,tls}*.test.ts',
  'test/redis/{sentinel,cluster}.test.ts',
  'test/process/redis-tls.test.ts',
]

export default defineConfig({
  test: {
    // Finds a real Redis once per project (REDIS_URL, testcontainers, or redis-server on PATH)
    // and hands its URL to the tests through `inject('redisUrl')`.
    globalSetup: ['test/helpers/global-setup.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    pool: 'forks',
    projects: [
      {
        extends: true,
        test: {
          name: 'broker',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, ...TOPOLOGIES],
          sequence: { groupOrder: 0 },
        },
      },
      { extends: true, test: { name: 'topologies', include: TOPOLOGIES, sequence: { groupOrder: 1 } } },
    ],
  },
})
