/** Bench settings from the environment; every loop in the bench is bounded by these. */

function num(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isFinite(n) || n < min || n > max)
    throw new Error(`${name} must be a number from ${min} to ${max}`)
  return n
}

export type Phase = 'idle' | 'fleet' | 'scale' | 'hot' | 'growth' | 'memory' | 'client' | 'tls'
const PHASES: readonly Phase[] = ['idle', 'fleet', 'scale', 'hot', 'growth', 'memory', 'client', 'tls']

export interface BenchConfig {
  rounds: number
  durationS: number
  warmupS: number
  connections: number
  pacedS: number
  growthS: number
  growthRounds: number
  memoryS: number
  /** The fleet-scale phase (bench/scale.ts). */
  scale: {
    credentials: number
    replicas: number
    cycles: number
    /** The token lifetime the simulator grants, s. */
    lifetimeS: number
    /** The simulator's delay before each token answer, ms. */
    latencyMs: number
  }
  /** The idle phase: how long each process idles before its RSS is read, and how many runs. */
  idleS: number
  idleRounds: number
  phases: Set<Phase>
  /** Before each measured run, wait up to this long for other processes to go quiet. */
  quietS: number
}

export function benchConfig(): BenchConfig {
  const durationS = num('BENCH_DURATION', 10, 1, 300)
  const phases = (process.env.BENCH_PHASES ?? PHASES.join(','))
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '' && s !== 'none')
  for (const p of phases) {
    if (!(PHASES as readonly string[]).includes(p))
      throw new Error(`BENCH_PHASES: unknown phase "${p}" (${PHASES.join(', ')})`)
  }
  return {
    rounds: num('BENCH_ROUNDS', 3, 1, 20),
    durationS,
    warmupS: num('BENCH_WARMUP', 2, 0, 60),
    connections: num('BENCH_CONNECTIONS', 64, 1, 1024),
    pacedS: num('BENCH_PACED_SECONDS', 5, 0, 300),
    growthS: num('BENCH_GROWTH_DURATION', 5, 1, 300),
    growthRounds: num('BENCH_GROWTH_ROUNDS', 2, 1, 20),
    memoryS: num('BENCH_MEMORY_SECONDS', 60, 1, 900),
    scale: {
      credentials: num('BENCH_FLEET_SCALE_CREDENTIALS', 1000, 1, 10_000),
      replicas: num('BENCH_FLEET_SCALE_REPLICAS', 5, 1, 16),
      cycles: num('BENCH_FLEET_SCALE_CYCLES', 3, 1, 20),
      lifetimeS: num('BENCH_FLEET_SCALE_LIFETIME', 30, 10, 3600),
      latencyMs: num('BENCH_FLEET_SCALE_LATENCY_MS', 50, 0, 5000),
    },
    idleS: num('BENCH_IDLE_SECONDS', 20, 1, 600),
    idleRounds: num('BENCH_IDLE_ROUNDS', 3, 1, 20),
    phases: new Set(phases as Phase[]),
    quietS: num('BENCH_QUIET_WAIT', 0, 0, 600),
  }
}
