// Starts real redis-server processes for tests: each on its own free loopback
// port with its own temporary directory, never the machine's Redis on 6379.
//
// Every process is tied to the test process twice over: `setpriv --pdeathsig`
// (when available) makes the kernel kill it if the test worker dies without
// running its exit handlers (vitest ends its workers with SIGTERM), and an exit
// handler kills whatever is still running when the worker exits normally.
// Temporary directories carry the owner's pid, so the next run removes those
// whose owner died without cleaning up.
//
// startRedis is the one primitive; a cluster or a Sentinel pair is meant to be
// built from it by passing `args` (e.g. `--cluster-enabled yes`) or `mode`.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

export const REDIS_SERVER_PATH = process.env.TALLY_TEST_REDIS_SERVER ?? '/usr/bin/redis-server';

export interface StartRedisOptions {
  /** AOF with `appendfsync always`, so a restart brings every acknowledged write back. */
  appendonly?: boolean;
  /** A fixed port; by default a free one is picked. */
  port?: number;
  /** An existing data directory; by default a fresh temporary one, removed when the test process exits. */
  dir?: string;
  /** Extra configuration, as redis-server command-line arguments (`['--maxmemory', '10mb']`). */
  args?: string[];
  /** 'sentinel' runs `redis-server --sentinel` (its config file must be writable; it is). */
  mode?: 'server' | 'sentinel';
  /** How long to wait for the server to answer PING. */
  startTimeoutMs?: number;
}

export interface RedisServerHandle {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** The process id of the running server (changes on restart). */
  readonly pid: number;
  /**
   * Asks the server to shut down (SIGTERM: it finishes its AOF fsync first) and
   * waits for it to exit. The directory stays, so restart() can follow.
   */
  stop(): Promise<void>;
  /** SIGKILL, no chance to persist anything not yet written: a crash. Waits for the exit. */
  kill(): Promise<void>;
  /** SIGSTOP: the server keeps its connections open but answers nothing. */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
  /** Starts the server again on the same port and directory, so AOF data comes back. */
  restart(): Promise<void>;
}

const running = new Set<ChildProcess>();
const ownedDirectories = new Set<string>();
let exitHandlerInstalled = false;
const DIRECTORY_PREFIX = 'tally-redis-';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function removeDirectoriesOfDeadOwners(): void {
  for (const name of readdirSync(tmpdir())) {
    const match = new RegExp(`^${DIRECTORY_PREFIX}(\\d+)-`).exec(name);
    if (match?.[1] !== undefined && !isAlive(Number(match[1]))) {
      rmSync(join(tmpdir(), name), { recursive: true, force: true });
    }
  }
}

function installExitHandler(): void {
  if (exitHandlerInstalled) return;
  exitHandlerInstalled = true;
  removeDirectoriesOfDeadOwners();
  process.once('exit', () => {
    for (const child of running) {
      // A paused server ignores SIGTERM until continued; SIGKILL does not care.
      child.kill('SIGKILL');
    }
    for (const directory of ownedDirectories) {
      rmSync(directory, { recursive: true, force: true });
    }
  });
}

async function findFreePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  if (address === null || typeof address === 'string') throw new Error('no TCP port was assigned');
  return address.port;
}

const canSetDeathSignal = existsSync('/usr/bin/setpriv');

function spawnServer(configPath: string, mode: 'server' | 'sentinel', args: string[]): ChildProcess {
  const serverArgs = [configPath, ...(mode === 'sentinel' ? ['--sentinel'] : []), ...args];
  const child = canSetDeathSignal
    ? spawn('/usr/bin/setpriv', ['--pdeathsig', 'KILL', REDIS_SERVER_PATH, ...serverArgs], {
        stdio: ['ignore', 'pipe', 'pipe'],
      })
    : spawn(REDIS_SERVER_PATH, serverArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  child.once('exit', () => running.delete(child));
  return child;
}

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

async function waitForExit(child: ChildProcess): Promise<void> {
  if (hasExited(child)) return;
  await once(child, 'exit');
}

async function terminate(child: ChildProcess): Promise<void> {
  if (hasExited(child)) return;
  // A paused server would hold SIGTERM until continued.
  child.kill('SIGCONT');
  child.kill('SIGTERM');
  await waitForExit(child);
}

/** Resolves once the server answers PING and has finished loading its data. */
async function waitUntilReady(port: number, child: ChildProcess, output: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (hasExited(child)) {
      throw new Error(`redis-server on port ${port} exited during start-up:\n${output()}`);
    }
    // A fresh client per attempt; the ready check waits for AOF loading to end.
    const client = new Redis({
      host: '127.0.0.1',
      port,
      lazyConnect: true,
      retryStrategy: () => null,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: 500,
    });
    client.on('error', () => {});
    try {
      await client.connect();
      if ((await client.ping()) === 'PONG') return;
    } catch {
      // Not listening yet; try again below.
    } finally {
      client.disconnect();
    }
    if (Date.now() > deadline) {
      throw new Error(`redis-server on port ${port} did not answer PING within ${timeoutMs} ms:\n${output()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function configLines(port: number, dir: string, appendonly: boolean): string {
  return [
    `port ${port}`,
    'bind 127.0.0.1',
    `dir ${JSON.stringify(dir)}`,
    // No RDB snapshots: durability under test is the AOF's, and snapshots would only add noise.
    'save ""',
    `appendonly ${appendonly ? 'yes' : 'no'}`,
    'appendfsync always',
    'daemonize no',
    'logfile ""',
    '',
  ].join('\n');
}

/** Starts a private redis-server; see StartRedisOptions. */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServerHandle> {
  installExitHandler();
  const mode = options.mode ?? 'server';
  const args = options.args ?? [];
  const startTimeoutMs = options.startTimeoutMs ?? 10_000;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), `${DIRECTORY_PREFIX}${process.pid}-`));
  const ownsDirectory = options.dir === undefined;
  if (ownsDirectory) ownedDirectories.add(dir);

  let port = options.port ?? 0;
  let child: ChildProcess | undefined;
  let output = '';
  const configPath = join(dir, mode === 'sentinel' ? 'sentinel.conf' : 'redis.conf');

  async function launch(): Promise<void> {
    output = '';
    child = spawnServer(configPath, mode, args);
    const collect = (chunk: Buffer) => {
      // Keep only the tail: it is for error messages, not a log.
      output = (output + chunk.toString()).slice(-4000);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    try {
      await waitUntilReady(port, child, () => output, startTimeoutMs);
    } catch (error) {
      child.kill('SIGKILL');
      await waitForExit(child);
      throw error;
    }
  }

  // A port found free can be taken before redis-server binds it; pick another then.
  const attempts = options.port === undefined ? 5 : 1;
  for (let attempt = 1; ; attempt += 1) {
    if (options.port === undefined) port = await findFreePort();
    // Sentinel rewrites its config file, so it is written once per start, not kept.
    writeFileSync(configPath, configLines(port, dir, options.appendonly ?? false));
    try {
      await launch();
      break;
    } catch (error) {
      if (attempt >= attempts) {
        if (ownsDirectory) {
          rmSync(dir, { recursive: true, force: true });
          ownedDirectories.delete(dir);
        }
        throw error;
      }
    }
  }

  const current = (): ChildProcess => {
    if (child === undefined) throw new Error('redis-server was never started');
    return child;
  };

  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    get pid() {
      return current().pid ?? -1;
    },
    async stop() {
      await terminate(current());
    },
    async kill() {
      const server = current();
      if (hasExited(server)) return;
      server.kill('SIGKILL');
      await waitForExit(server);
    },
    pause() {
      current().kill('SIGSTOP');
    },
    resume() {
      current().kill('SIGCONT');
    },
    async restart() {
      await terminate(current());
      await launch();
    },
  };
}

let sharedServer: Promise<RedisServerHandle> | undefined;

/**
 * The Redis URL for tests that only need a working server: TALLY_TEST_REDIS_URL
 * when set (CI may provide one), otherwise a private server started once per
 * test process and killed when it exits. The server is shared, so tests must
 * keep apart by key prefix, not by FLUSHALL. Tests that stop, kill or pause
 * Redis must call startRedis() for a server of their own.
 */
export async function testRedisUrl(): Promise<string> {
  const fromEnvironment = process.env.TALLY_TEST_REDIS_URL;
  if (fromEnvironment !== undefined && fromEnvironment !== '') return fromEnvironment;
  sharedServer ??= startRedis({ appendonly: false });
  return (await sharedServer).url;
}
