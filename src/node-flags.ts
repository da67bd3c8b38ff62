/**
 * The node flags the broker process runs with, wherever it is started: `npm start`, the container's
 * CMD and `npm run demo` (test/docker/static.test.ts holds the first two to this list), and the
 * bench, so that what is measured is what runs.
 *
 * The live heap of a broker is small and nearly everything a request allocates dies with it, but
 * under sustained load V8's defaults size the heap for a much bigger program, and RSS grows with it.
 * - `--max-semi-space-size=4` caps the young generation, which V8 otherwise grows under load
 *   whatever the live data. Scavenges get more frequent but stay cheap, since what they copy is only
 *   the requests in flight.
 * - `--heap-growing-percent=50`: the next full GC comes when the old generation has grown by half
 *   rather than by several times; a loaded broker promotes little garbage, so that is one short
 *   mark-compact now and then.
 * - `--v8-pool-size=1`: one V8 worker thread for background GC and compilation instead of four. A
 *   broker runs on about one core (its container limit), where more workers only take turns; and
 *   each worker's allocator arena can keep what a start-up compile job freed for the process's life.
 * What they save and cost is measured, not assumed: docs/performance.md (Memory, Footprint),
 * `npm run bench`, `node --import tsx bench/ab.ts`.
 */
export const NODE_FLAGS: readonly string[] = [
  '--max-semi-space-size=4',
  '--heap-growing-percent=50',
  '--v8-pool-size=1',
]
