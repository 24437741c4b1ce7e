// Runs the real server as a child process (`node --import tsx src/main.ts`),
// on ports it picks itself (TALLY_*_PORT=0, read back from its "listening"
// log line), and keeps everything it writes. Every process is killed when
// the test process exits, and with --pdeathsig if the test worker dies first.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { once } from 'node:events';
import { get as httpsGet } from 'node:https';
import { join } from 'node:path';
import { eventually } from './eventually.js';

const ROOT = join(import.meta.dirname, '..', '..');
const running = new Set<ChildProcess>();
let exitHandlerInstalled = false;

export interface TallyProcessOptions {
  env?: Record<string, string>;
  args?: string[];
  /** Wait until /readyz answers 200 (default); false returns once both ports listen. */
  waitUntilReady?: boolean;
  startTimeoutMs?: number;
  /**
   * The server serves TLS (TALLY_TLS_* in env): httpUrl is https, and the
   * readiness probe trusts this CA and, for mutual TLS, presents this certificate.
   */
  tls?: { ca: Buffer; cert?: Buffer; key?: Buffer };
}

export interface TallyProcess {
  readonly pid: number;
  readonly grpcAddress: string;
  readonly httpUrl: string;
  /** Everything written to stdout so far (JSON log lines). */
  stdout(): string;
  stderr(): string;
  /** Parsed log lines written so far. */
  logs(): Record<string, unknown>[];
  signal(name: NodeJS.Signals): void;
  /** Resolves with the exit code (or the signal that ended it). */
  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** GET over HTTPS with a private CA (fetch cannot be given one without undici). */
function httpsStatus(url: string, tls: { ca: Buffer; cert?: Buffer; key?: Buffer }): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = httpsGet(url, { ca: tls.ca, cert: tls.cert, key: tls.key, agent: false }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    request.on('error', reject);
  });
}

function installExitHandler(): void {
  if (exitHandlerInstalled) return;
  exitHandlerInstalled = true;
  process.once('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
}

function spawnTally(args: string[], env: Record<string, string>): ChildProcess {
  const command = [process.execPath, '--import', 'tsx', 'src/main.ts', ...args];
  const withDeathSignal = existsSync('/usr/bin/setpriv') ? ['/usr/bin/setpriv', '--pdeathsig', 'KILL', ...command] : command;
  const child = spawn(withDeathSignal[0]!, withDeathSignal.slice(1), {
    cwd: ROOT,
    // Only what the test gives: a TALLY_* variable of the developer's shell must not leak in.
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  return child;
}

/** Runs Tally to completion (for --help, bad settings): its output and exit code. */
export async function runTallyToExit(options: { env?: Record<string, string>; args?: string[] } = {}): Promise<{
  code: number | null;
  stdout: string;
  stderr: string;
}> {
  installExitHandler();
  const child = spawnTally(options.args ?? [], options.env ?? {});
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

export async function startTally(options: TallyProcessOptions = {}): Promise<TallyProcess> {
  installExitHandler();
  const child = spawnTally(options.args ?? [], {
    TALLY_HOST: '127.0.0.1',
    TALLY_GRPC_PORT: '0',
    TALLY_HTTP_PORT: '0',
    ...options.env,
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  let exitedEarly = false;
  void exit.then(() => (exitedEarly = true));

  const parse = () =>
    stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);

  const timeoutMs = options.startTimeoutMs ?? 20_000;
  const listening = await eventually(async () => {
    if (exitedEarly) throw new Error(`tally exited during start-up:\n${stdout}\n${stderr}`);
    const line = parse().find((entry) => entry.msg === 'listening');
    if (line === undefined) throw new Error(`tally did not log "listening" within ${timeoutMs} ms:\n${stdout}\n${stderr}`);
    return line as { grpc_port: number; http_port: number };
  }, timeoutMs).catch((error: unknown) => {
    child.kill('SIGKILL');
    throw error;
  });

  const httpUrl = `${options.tls === undefined ? 'http' : 'https'}://127.0.0.1:${listening.http_port}`;
  if (options.waitUntilReady !== false) {
    await eventually(async () => {
      if (exitedEarly) throw new Error(`tally exited during start-up:\n${stdout}\n${stderr}`);
      const status = options.tls === undefined ? (await fetch(`${httpUrl}/readyz`)).status : await httpsStatus(`${httpUrl}/readyz`, options.tls);
      if (status !== 200) throw new Error(`/readyz answered ${status}:\n${stdout}`);
    }, timeoutMs);
  }

  return {
    pid: child.pid!,
    grpcAddress: `127.0.0.1:${listening.grpc_port}`,
    httpUrl,
    stdout: () => stdout,
    stderr: () => stderr,
    logs: parse,
    signal: (name) => child.kill(name),
    exited: () => exit,
    async stop() {
      if (!exitedEarly) child.kill('SIGTERM');
      return exit;
    },
  };
}
