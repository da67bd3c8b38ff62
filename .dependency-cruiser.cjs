/**
 * One direction of imports:
 *   core  <-  tokens  <-  plugins  <-  app, server
 *   core  <-  adapters (config, upstreams, store, http, log, tracing)  <-  plugins
 * The simulator is a development tool outside the production graph.
 */
const ADAPTERS = '^src/(config|upstreams|store|http|log|tracing)/'

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'core-imports-only-core',
      comment: 'src/core is the framework-free vocabulary: node built-ins and itself, nothing else.',
      severity: 'error',
      from: { path: '^src/core/' },
      to: { pathNot: '^src/core/', dependencyTypesNot: ['core'] },
    },
    {
      name: 'tokens-import-only-core',
      comment: 'The token domain logic takes its collaborators as arguments; it names no adapter or framework.',
      severity: 'error',
      from: { path: '^src/tokens/' },
      to: { pathNot: '^src/(core|tokens)/', dependencyTypesNot: ['core'] },
    },
    {
      name: 'adapters-do-not-import-each-other',
      comment: 'An adapter imports the core; only plugins wire adapters together.',
      severity: 'error',
      from: { path: `${ADAPTERS}` },
      to: { path: '^src/', pathNot: ['^src/core/', '^src/$1/'] },
    },
    {
      name: 'only-the-wiring-imports-plugins',
      comment: 'Plugins are the wiring layer: imported by the top and by each other, never by what they wire.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/((app|server)\\.ts|plugins/)' },
      to: { path: '^src/plugins/' },
    },
    {
      name: 'opentelemetry-only-in-the-tracing-adapter',
      comment: 'Loaded lazily by plugins/tracing.ts; anywhere else it would load without tracing on.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/tracing/' },
      to: { path: '@opentelemetry/' },
    },
    {
      name: 'redis-store-only-by-dynamic-import',
      comment:
        'plugins/store.ts imports the Redis store when a Redis mode is set; a static import would load ioredis in every broker.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/store/redis' },
      to: { path: '^src/store/redis', dependencyTypesNot: ['dynamic-import', 'type-only'] },
    },
    {
      name: 'ioredis-only-in-the-redis-store',
      comment: 'Loaded with the Redis store, only when a Redis mode is set.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/store/redis' },
      to: { path: 'node_modules/ioredis/' },
    },
    {
      name: 'undici-by-its-parts',
      comment:
        "undici's index loads the whole library (fetch, WebSocket, caches, mocks): upstreams/undici.ts loads the parts the broker uses. Types may come from the index.",
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/upstreams/undici\\.ts$' },
      to: { path: 'node_modules/undici/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'nothing-imports-the-top',
      comment: 'app.ts builds the app; server.ts is the process. Only server.ts imports app.ts.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/server\\.ts$' },
      to: { path: '^src/(app|server)\\.ts$' },
    },
    {
      name: 'production-code-does-not-import-the-simulator',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/simulator/' },
      to: { path: '^src/simulator/' },
    },
    {
      name: 'simulator-stays-out-of-the-broker',
      comment: 'The simulator may share trivial constants (node-flags.ts), no broker code.',
      severity: 'error',
      from: { path: '^src/simulator/' },
      to: { path: '^src/', pathNot: ['^src/simulator/', '^src/node-flags\\.ts$'] },
    },
    {
      name: 'src-does-not-import-tests-or-bench',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(test|bench)/' },
    },
    {
      name: 'no-circular',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.json'],
    },
  },
}
