// Starts Tally the way an operator would: the built dist/main.js with TALLY_*
// variables, against a real Redis, in its own process on free loopback ports.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { delay, isRunning, startProcess, type StartedProcess } from '../lib/child-processes.js';
import { freeLoopbackPort } from '../lib/free-port.js';

export interface TallyTarget {
  readonly grpcAddress: string;
  readonly httpOrigin: string;
  /** How Tally was started, printed with the settings. */
  readonly commandLine: string;
  readonly process: StartedProcess;
}

export interface StartTallyOptions {
  readonly projectRoot: string;
  readonly redisUrl: string;
  readonly scratchDirectory: string;
  /** TALLY_* settings over the bench's (TALLY_CACHE_SIZE=0); a value of undefined leaves the setting to its default. */
  readonly environment?: Readonly<Record<string, string | undefined>>;
  /** Options for node itself, before the entry point, e.g. --cpu-prof. */
  readonly nodeArguments?: readonly string[];
  /** Names the log file, so the scratch directory says which Tally wrote what. */
  readonly label?: string;
  /** The master key the replicas share: tokens minted by one must be read by the others. */
  readonly masterKey: string;
}

/** One master key per bench run, so every Tally process reads the others' tokens. */
export function newMasterKey(): string {
  return randomBytes(32).toString('base64');
}

const readyTimeoutMilliseconds = 30_000;

export async function buildTally(projectRoot: string, scratchDirectory: string): Promise<{ entry: string[]; note: string }> {
  const build = startProcess('npm run build', 'npm', ['run', 'build'], { cwd: projectRoot, logPath: join(scratchDirectory, 'build.log') });
  const code = await build.exited;
  if (code === 0 && existsSync(join(projectRoot, 'dist', 'main.js'))) return { entry: ['dist/main.js'], note: 'built by npm run build' };
  // A type error elsewhere in the tree should not hide the numbers; the note says how it ran.
  console.warn(`npm run build failed (exit ${code}); running Tally from source with tsx instead:\n${build.output()}`);
  return { entry: ['--import', 'tsx', 'src/main.ts'], note: 'from source, because npm run build failed' };
}

export async function startTally(options: StartTallyOptions, entry: readonly string[]): Promise<TallyTarget> {
  const grpcPort = await freeLoopbackPort();
  const httpPort = await freeLoopbackPort();
  // The local cache is measured by rows of their own; the plain rows pay the Redis round trip.
  const settings = definedOnly({ TALLY_CACHE_SIZE: '0', ...options.environment });
  const environment = {
    ...process.env,
    TALLY_HOST: '127.0.0.1',
    TALLY_GRPC_PORT: String(grpcPort),
    TALLY_HTTP_PORT: String(httpPort),
    TALLY_REDIS_URL: options.redisUrl,
    TALLY_MASTER_KEY: options.masterKey,
    ...settings,
  };
  const nodeArguments = options.nodeArguments ?? [];
  const label = options.label ?? 'tally';
  const tally = startProcess(label, process.execPath, [...nodeArguments, ...entry], {
    cwd: options.projectRoot,
    env: environment,
    logPath: join(options.scratchDirectory, `${label}-${grpcPort}.log`),
  });
  const httpOrigin = `http://127.0.0.1:${httpPort}`;
  await waitUntilReady(tally, httpOrigin);
  const shown = Object.entries(settings)
    .map(([name, value]) => `${name}=${value} `)
    .join('');
  return {
    grpcAddress: `127.0.0.1:${grpcPort}`,
    httpOrigin,
    commandLine: `${shown}node ${[...nodeArguments, ...entry].join(' ')}`,
    process: tally,
  };
}

function definedOnly(settings: Readonly<Record<string, string | undefined>>): Record<string, string> {
  return Object.fromEntries(Object.entries(settings).filter((entry): entry is [string, string] => entry[1] !== undefined));
}

/** /readyz answers 200 once the store answers and the key ring is loaded. */
async function waitUntilReady(tally: StartedProcess, httpOrigin: string): Promise<void> {
  const deadline = Date.now() + readyTimeoutMilliseconds;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    if (!isRunning(tally)) throw new Error(`Tally exited during start-up:\n${tally.output()}`);
    try {
      const response = await fetch(`${httpOrigin}/readyz`, { signal: AbortSignal.timeout(1_000) });
      if (response.ok) return;
      last = `/readyz answered ${response.status}`;
    } catch (error) {
      last = (error as Error).message;
    }
    await delay(100);
  }
  throw new Error(`Tally was not ready within ${readyTimeoutMilliseconds} ms (${last}):\n${tally.output()}`);
}
