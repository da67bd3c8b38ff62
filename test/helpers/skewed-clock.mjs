// Loaded with `node --import` into a broker process: its wall clock reads TEST_CLOCK_SKEW_MS off
// (Date.now() and new Date() alike), as on a host whose clock has drifted. Timers run on the
// monotonic clock and are left alone, as they are on such a host.
const skew = Number(process.env.TEST_CLOCK_SKEW_MS ?? '0')
const RealDate = Date

class SkewedDate extends RealDate {
  constructor(...args) {
    if (args.length === 0) super(RealDate.now() + skew)
    else super(...args)
  }

  static now() {
    return RealDate.now() + skew
  }
}

globalThis.Date = SkewedDate
