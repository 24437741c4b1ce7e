import { execFileSync } from 'node:child_process';
import { cpus, loadavg, release, totalmem } from 'node:os';

export interface MachineDescription {
  readonly cpuModel: string;
  readonly cores: number;
  readonly memoryGibibytes: number;
  readonly kernel: string;
  readonly node: string;
  readonly redis: string;
  /** One-minute load average before the bench began: a busy machine skews every row. */
  readonly loadBefore: number;
}

export function describeMachine(): MachineDescription {
  const processors = cpus();
  return {
    cpuModel: processors[0]?.model.trim() ?? 'unknown',
    cores: processors.length,
    memoryGibibytes: Math.round(totalmem() / 2 ** 30),
    kernel: `Linux ${release()}`,
    node: process.version,
    redis: commandVersion('redis-server', ['--version']),
    loadBefore: loadavg()[0] ?? 0,
  };
}

function commandVersion(command: string, args: readonly string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', timeout: 5_000 }).trim();
  } catch {
    return 'not found';
  }
}
