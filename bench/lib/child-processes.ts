import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';

// Every process the bench starts is registered here, so that a failure anywhere
// (a thrown check, a signal, the overall time limit) still leaves no server running.
const running = new Set<ChildProcess>();

// With setpriv the kernel kills the child when the bench itself is killed (SIGKILL,
// an out-of-memory kill), when no exit handler gets to run.
const setprivPath = '/usr/bin/setpriv';
const parentDeathSignal = existsSync(setprivPath);

export interface StartedProcess {
  readonly child: ChildProcess;
  readonly name: string;
  readonly logPath: string;
  /** The end of what the process wrote, both streams, for error messages. */
  output(): string;
  /** Resolves when the output matches, rejects if the process exits first. */
  waitForOutput(pattern: RegExp, timeoutMilliseconds: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code (or the signal's name) once the process has ended. */
  exited: Promise<number | string>;
  stop(): Promise<void>;
}

export interface StartOptions extends Pick<SpawnOptions, 'cwd' | 'env'> {
  /** Where stdout and stderr go. A file, not a pipe: reading a busy server's log would take CPU from the measurement. */
  logPath: string;
}

export function startProcess(name: string, command: string, args: readonly string[], options: StartOptions): StartedProcess {
  const logDescriptor = openSync(options.logPath, 'a');
  const spawnOptions: SpawnOptions = { cwd: options.cwd, env: options.env, stdio: ['ignore', logDescriptor, logDescriptor] };
  const child = parentDeathSignal
    ? spawn(setprivPath, ['--pdeathsig', 'KILL', command, ...args], spawnOptions)
    : spawn(command, args, spawnOptions);
  closeSync(logDescriptor);
  running.add(child);
  let spawnError = '';
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child);
      resolve(code ?? signal ?? 'unknown');
    });
    child.once('error', (error) => {
      spawnError = `\n[could not start ${command}: ${error.message}]`;
      running.delete(child);
      resolve('spawn-error');
    });
  });
  const output = (): string => {
    const text = existsSync(options.logPath) ? readFileSync(options.logPath, 'utf8') : '';
    return tail(text + spawnError);
  };

  return {
    child,
    name,
    logPath: options.logPath,
    output,
    exited,
    async waitForOutput(pattern, timeoutMilliseconds) {
      const deadline = Date.now() + timeoutMilliseconds;
      for (;;) {
        const text = existsSync(options.logPath) ? readFileSync(options.logPath, 'utf8') : '';
        const match = text.match(pattern);
        if (match) return match;
        if (!running.has(child)) throw new Error(`${name} exited before printing ${pattern}:\n${output()}`);
        if (Date.now() > deadline) throw new Error(`${name} did not print ${pattern} within ${timeoutMilliseconds} ms:\n${output()}`);
        await delay(50);
      }
    },
    stop: () => stopChild(child, exited),
  };
}

/** Whether the process is still running (it may have crashed under load). */
export function isRunning(process: StartedProcess): boolean {
  return running.has(process.child);
}

async function stopChild(child: ChildProcess, exited: Promise<unknown>): Promise<void> {
  if (!running.has(child)) return;
  child.kill('SIGTERM');
  // A server that ignores SIGTERM (or hangs while draining) must not outlive the bench.
  const forced = setTimeout(() => child.kill('SIGKILL'), 3_000);
  await exited;
  clearTimeout(forced);
}

/** Stops every process still running; safe to call more than once. */
export async function stopAllProcesses(): Promise<void> {
  for (const child of running) child.kill('SIGTERM');
  const deadline = Date.now() + 3_000;
  while (running.size > 0 && Date.now() < deadline) await delay(50);
  for (const child of running) child.kill('SIGKILL');
}

/** For process 'exit', where no asynchronous work runs any more. */
export function killAllProcessesNow(): void {
  for (const child of running) child.kill('SIGKILL');
}

export function tail(text: string, lines = 30): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

export function delay(milliseconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}
