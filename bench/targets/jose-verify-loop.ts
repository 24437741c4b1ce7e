// The alternative Tally replaces: every service verifying JWTs itself with jose.
// One awaited jwtVerify after another in a tight loop, each call timed, so the
// rate is what one core of a verifying service gets and the percentiles are per
// call. A child process, so the bench's own work does not share its event loop.
//
// Usage: node --import tsx bench/targets/jose-verify-loop.ts <ES256|EdDSA|ML-DSA-65> <warm-up seconds> <seconds>
// Prints one line: bench-result {json}.
import { generateKeyPair, jwtVerify, SignJWT } from 'jose';
import { percentile } from '../lib/percentiles.js';

const [algorithm = '', warmUpText = '', secondsText = ''] = process.argv.slice(2);
const warmUpSeconds = Number(warmUpText);
const seconds = Number(secondsText);
if (!['ES256', 'EdDSA', 'ML-DSA-65'].includes(algorithm) || !(warmUpSeconds >= 0) || !(seconds > 0)) {
  console.error('usage: jose-verify-loop.ts <ES256|EdDSA|ML-DSA-65> <warm-up seconds> <seconds>');
  process.exit(2);
}

// Claims as Tally's RFC 9068 access tokens carry them, so the parsed payload is the same size.
const subject = 'bench-user-0001';
const { publicKey, privateKey } = await generateKeyPair(algorithm, algorithm === 'EdDSA' ? { crv: 'Ed25519' } : {});
const token = await new SignJWT({ client_id: 'bench-client', scope: 'orders:read orders:write' })
  .setProtectedHeader({ alg: algorithm, typ: 'at+jwt', kid: 'bench-key' })
  .setIssuer('tally')
  .setSubject(subject)
  .setAudience('orders')
  .setIssuedAt()
  .setExpirationTime('1h')
  .setJti('AAECAwQFBgcICQoLDA0ODw')
  .sign(privateKey);
// What a careful verifier demands: the algorithm, the issuer, its own audience and the token type.
const options = { algorithms: [algorithm], issuer: 'tally', audience: 'orders', typ: 'at+jwt' };

async function loop(durationMilliseconds: number, record: boolean): Promise<{ calls: number; wrong: number; elapsed: number; samples: number[] }> {
  const samples: number[] = [];
  let calls = 0;
  let wrong = 0;
  const start = performance.now();
  const end = start + durationMilliseconds;
  let now = start;
  while (now < end) {
    const before = now;
    const { payload } = await jwtVerify(token, publicKey, options);
    now = performance.now();
    if (payload.sub !== subject) wrong++;
    calls++;
    if (record) samples.push(now - before);
  }
  return { calls, wrong, elapsed: now - start, samples };
}

await loop(warmUpSeconds * 1_000, false);
const measured = await loop(seconds * 1_000, true);
const sorted = measured.samples.sort((a, b) => a - b);
console.log(
  `bench-result ${JSON.stringify({
    algorithm,
    tokenBytes: token.length,
    calls: measured.calls,
    wrong: measured.wrong,
    callsPerSecond: measured.calls / (measured.elapsed / 1_000),
    p50Milliseconds: percentile(sorted, 0.5),
    p99Milliseconds: percentile(sorted, 0.99),
  })}`,
);
