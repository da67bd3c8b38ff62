/**
 * The node flags the broker process runs with, wherever it is started: `npm start`, the container's
 * CMD and `npm run demo` (test/docker/static.test.ts holds the first two to this list), and the
 * bench, so that what is measured is what runs.
 *
 * The live heap of a broker is small (about 25 MB with 100 credentials) and nearly everything a
 * request allocates dies with it, but under sustained load V8's defaults size the heap for a much
 * bigger program: RSS of a loaded broker with 100 credentials went from about 95 MB to 127-130 MB.
 * - `--max-semi-space-size=4`: a young generation of 2 x 4 MB instead of up to 2 x 16 MB, which V8
 *   grows to under load whatever the live data. Scavenges get more frequent but stay cheap, since
 *   what they copy is only the requests in flight.
 * - `--heap-growing-percent=50`: the next full GC comes when the old generation has grown by half
 *   instead of by up to four times; what a loaded broker promotes is a few hundred kB of garbage a
 *   second, so that is one short mark-compact every several seconds.
 * Measured: RSS flat at 95-101 MB over a minute of load, for about 5 % more CPU per request
 * (README, Performance; `npm run bench`, `node --import tsx bench/ab.ts`).
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4', '--heap-growing-percent=50']
