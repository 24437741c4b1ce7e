import { join } from 'node:path';
import { startProcess, type StartedProcess } from '../lib/child-processes.js';
import { freeLoopbackPort } from '../lib/free-port.js';

export interface BareGrpcTarget {
  readonly grpcAddress: string;
  readonly process: StartedProcess;
}

/** `nodeArguments` go to node before the script, e.g. --cpu-prof. */
export async function startBareGrpcServer(projectRoot: string, scratchDirectory: string, nodeArguments: readonly string[] = []): Promise<BareGrpcTarget> {
  const port = await freeLoopbackPort();
  const args = [...nodeArguments, '--import', 'tsx', 'bench/targets/bare-grpc-server.ts', String(port)];
  const server = startProcess('bare grpc-js server', process.execPath, args, {
    cwd: projectRoot,
    logPath: join(scratchDirectory, `bare-grpc-${port}.log`),
  });
  await server.waitForOutput(/listening on /, 15_000);
  return { grpcAddress: `127.0.0.1:${port}`, process: server };
}
