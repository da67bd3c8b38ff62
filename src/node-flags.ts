/**
 * The node flags the broker process runs with, wherever it is started: `npm start`, the container's
 * CMD and `npm run demo` (test/docker/static.test.ts holds the first two to this list), and the
 * bench, so that what is measured is what runs.
 *
 * --max-semi-space-size=4: the young generation is capped at 2 x 4 MB instead of 2 x 16 MB. Under
 * sustained load V8 grows it to the cap whatever the live data (about 25 MB of heap in use here),
 * which alone took the RSS of a loaded broker with 100 credentials from about 100 MB to 130 MB.
 * Scavenges get more frequent but stay cheap, because almost everything a request allocates dies
 * with it: about 5 % more CPU per request (`node --import tsx bench/ab.ts`, README, Performance).
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4']
