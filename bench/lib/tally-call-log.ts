// Tally logs one line per call (method, code, and inactive_reason when a token
// was refused). After a load, those lines say from the server's side what the
// byte count says from the client's: how many calls were answered, and how.
import { readFileSync, statSync } from 'node:fs';
import { delay } from './child-processes.js';

export interface CallLogSummary {
  readonly calls: number;
  /** Calls whose code was not `ok`, by code. */
  readonly failures: Record<string, number>;
  /** Calls answered but with the token found inactive, by reason. */
  readonly inactive: Record<string, number>;
}

/**
 * Undefined when the log holds no call lines for the method (a quieter log level, a changed format).
 * `fromByte` skips what earlier rows on the same process logged.
 */
export async function summarizeCallLog(logPath: string, method: string, fromByte = 0): Promise<CallLogSummary | undefined> {
  await untilFileStopsGrowing(logPath);
  let calls = 0;
  const failures: Record<string, number> = {};
  const inactive: Record<string, number> = {};
  for (const line of readFileSync(logPath).subarray(fromByte).toString('utf8').split('\n')) {
    if (!line.includes(method)) continue;
    let record: { method?: unknown; code?: unknown; inactive_reason?: unknown };
    try {
      record = JSON.parse(line) as typeof record;
    } catch {
      continue;
    }
    if (typeof record.method !== 'string' || !record.method.endsWith(method) || typeof record.code !== 'string') continue;
    calls++;
    if (record.code !== 'ok') failures[record.code] = (failures[record.code] ?? 0) + 1;
    if (typeof record.inactive_reason === 'string') inactive[record.inactive_reason] = (inactive[record.inactive_reason] ?? 0) + 1;
  }
  return calls === 0 ? undefined : { calls, failures, inactive };
}

/** The logger writes asynchronously: the last calls' lines land a moment after their answers. */
async function untilFileStopsGrowing(path: string, quietMilliseconds = 300, limitMilliseconds = 5_000): Promise<void> {
  const deadline = Date.now() + limitMilliseconds;
  let size = statSync(path).size;
  while (Date.now() < deadline) {
    await delay(quietMilliseconds);
    const now = statSync(path).size;
    if (now === size) return;
    size = now;
  }
}

/** Where the log ends now: a row passes it to summarizeCallLog to read only its own calls. */
export function callLogSize(logPath: string): number {
  return statSync(logPath).size;
}

/** Every call Tally logged, of any method: what a CPU profile of the process is divided by. */
export function countLoggedCalls(logPath: string): number {
  let calls = 0;
  for (const line of readFileSync(logPath, 'utf8').split('\n')) {
    if (!line.includes('"method"')) continue;
    try {
      const record = JSON.parse(line) as { method?: unknown; code?: unknown };
      if (typeof record.method === 'string' && typeof record.code === 'string') calls++;
    } catch {
      // A line cut short while the process stopped.
    }
  }
  return calls;
}
