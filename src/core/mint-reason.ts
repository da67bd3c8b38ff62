/**
 * Why a mint was started, as the `token.minted` audit line says it: the start-up warm-up, the
 * background refresh, a caller's `min_ttl` the held token could not meet, a caller's refresh
 * without (`forced`) or with a `rejected_token`, or a reloaded configuration.
 */
export type MintReason = 'warm-up' | 'refresh' | 'min_ttl' | 'forced' | 'rejected_token' | 'reload'
