/** Test CAs and certificates: made by tools/certs.ts, which the Redis topologies use too. */
export { type CertDir, certDir, type Issued, type TestCa } from '../../tools/certs.js'
