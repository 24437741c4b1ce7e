import type { Row } from '../lib/row.js';
import { bareGrpcIntrospect } from './bare-grpc-introspect.js';

// Every ratio divides by the first row, measured minutes earlier. Other work on the
// machine comes and goes in between; the same baseline at the end shows how far the
// machine drifted during the run, and so how far the ratios can be trusted.
export const bareGrpcIntrospectAgain: Row = {
  name: 'bare grpc-js, no-op Introspect, again at the end',
  description: 'the first row repeated last, on the same server process: its ratio is how much the machine drifted during the run',
  async measure(context) {
    const first = await context.measure(bareGrpcIntrospect);
    const again = await bareGrpcIntrospect.measure(context);
    const drift = again.callsPerSecond / first.callsPerSecond - 1;
    return { ...again, notes: [`${drift >= 0 ? '+' : ''}${(drift * 100).toFixed(0)}% against the first row`, ...again.notes] };
  },
};
