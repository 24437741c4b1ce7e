// Runs the real `tally` command (bin/tally.js) as a child process, with only
// the environment a test gives it, and keeps what it printed.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export async function runCli(args: readonly string[], options: { env?: Record<string, string>; stdin?: string; command?: readonly string[] } = {}): Promise<CliRun> {
  const [file, ...prefix] = options.command ?? [process.execPath, join(ROOT, 'bin', 'tally.js')];
  const child = spawn(file!, [...prefix, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.end(options.stdin ?? '');
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

/** The parsed JSON a successful `--json` run printed. */
export function jsonOf<T = Record<string, unknown>>(run: CliRun): T {
  if (run.code !== 0) throw new Error(`tally exited ${run.code}: ${run.stderr}`);
  return JSON.parse(run.stdout) as T;
}
