import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startProcess } from '../lib/child-processes.js';
import type { Measurement, Row } from '../lib/row.js';

// Pinned to one core because the claim is "calls/s on one core": jose's WebCrypto
// verify runs on libuv's thread pool, which would otherwise borrow the second core.
const tasksetPath = '/usr/bin/taskset';
const warmUpSeconds = 1;
const measuredSeconds = 4;

interface LoopResult {
  readonly calls: number;
  readonly wrong: number;
  readonly tokenBytes: number;
  readonly callsPerSecond: number;
  readonly p50Milliseconds: number;
  readonly p99Milliseconds: number;
}

function joseJwtVerify(algorithm: 'ES256' | 'EdDSA' | 'ML-DSA-65'): Row {
  return {
    name: `alternative: in-process jose jwtVerify, ${algorithm}`,
    description:
      `what Tally replaces: jose's jwtVerify of an ${algorithm} RFC 9068 access token (algorithm, issuer, audience and typ checked) ` +
      'in a tight loop of awaited calls, each timed, in a child process on one core; no network, so the ratio compares ' +
      "one core's local verification with the whole gRPC server",
    async measure(context): Promise<Measurement> {
      const script = ['--import', 'tsx', 'bench/targets/jose-verify-loop.ts', algorithm, String(warmUpSeconds), String(measuredSeconds)];
      const pinned = existsSync(tasksetPath);
      const [command, args] = pinned ? [tasksetPath, ['-c', '0', process.execPath, ...script]] : [process.execPath, script];
      const loop = startProcess(`jose ${algorithm}`, command, args, {
        cwd: context.projectRoot,
        logPath: join(context.scratchDirectory, `jose-verify-${algorithm}.log`),
      });
      const code = await Promise.race([
        loop.exited,
        new Promise<string>((resolve) => setTimeout(() => resolve('timeout'), (warmUpSeconds + measuredSeconds + 30) * 1_000).unref()),
      ]);
      if (code !== 0) {
        await loop.stop();
        throw new Error(`the jose loop ended with ${code}:\n${loop.output()}`);
      }
      const line = loop.output().split('\n').find((text) => text.startsWith('bench-result '));
      if (line === undefined) throw new Error(`the jose loop printed no result:\n${loop.output()}`);
      const result = JSON.parse(line.slice('bench-result '.length)) as LoopResult;
      if (result.wrong > 0 || result.calls === 0) throw new Error(`the jose loop verified ${result.calls} calls, ${result.wrong} with the wrong subject`);
      return {
        callsPerSecond: result.callsPerSecond,
        p50Milliseconds: result.p50Milliseconds,
        p99Milliseconds: result.p99Milliseconds,
        requests: result.calls,
        command: `${pinned ? 'taskset -c 0 ' : ''}node ${script.join(' ')}`,
        notes: [
          `token ${result.tokenBytes} B; every one of ${result.calls} calls verified with the expected subject`,
          `${measuredSeconds} s measured after ${warmUpSeconds} s warm-up${pinned ? ', pinned to CPU 0' : ', not pinned (no taskset)'}`,
        ],
      };
    },
  };
}

export const joseJwtVerifyEs256 = joseJwtVerify('ES256');
export const joseJwtVerifyEdDsa = joseJwtVerify('EdDSA');
export const joseJwtVerifyMlDsa65 = joseJwtVerify('ML-DSA-65');
