// npm run bench [-- <text>...]: Tally beside a bare @grpc/grpc-js server, both under
// h2load, on this machine, in one run. With arguments, only the rows whose names
// contain one of them run (the baseline always does, or no ratio means anything).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { killAllProcessesNow, stopAllProcesses } from './lib/child-processes.js';
import { createBenchContext } from './lib/context.js';
import { h2loadVersion, type LoadSettings } from './lib/h2load.js';
import { describeMachine } from './lib/machine.js';
import { formatReport, type RowOutcome } from './lib/report.js';
import { rows } from './rows/index.js';

// Fixed, so runs compare: 160 streams in flight keep a single-threaded server
// busy, and one h2load thread leaves the other core to the server.
const settings: LoadSettings = {
  connections: 16,
  streamsPerConnection: 10,
  threads: 1,
  warmUpSeconds: 3,
  durationSeconds: 10,
};
// Past this the bench gives up and stops everything: a hung server must not hang CI or a shell.
const overallLimitMilliseconds = 180_000;

// Set by a signal or the time limit, so the loop starts no row while everything is being stopped.
let stopping = false;

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const resultsPath = join(projectRoot, 'bench', 'results', 'latest.md');

async function main(): Promise<number> {
  const machine = describeMachine();
  const scratchDirectory = mkdtempSync(join(tmpdir(), 'tally-bench-'));
  const context = createBenchContext(projectRoot, scratchDirectory, settings);
  let succeeded = false;
  try {
    const h2load = await h2loadVersion(join(scratchDirectory, 'h2load-version.txt'));
    const filters = process.argv.slice(2);
    const [baseline, ...others] = rows;
    const selected = [baseline, ...others.filter((row) => filters.length === 0 || filters.some((text) => row.name.includes(text)))];

    const outcomes: RowOutcome[] = [];
    for (const row of selected) {
      if (stopping) break;
      console.log(`measuring: ${row.name}`);
      // Other work on the machine skews a row; the load average beside it says how much there was.
      const loadBefore = loadavg()[0] ?? 0;
      try {
        const measurement = await row.measure(context);
        outcomes.push({ row, measurement: { ...measurement, notes: [...measurement.notes, `load average ${loadBefore.toFixed(2)} before the row`] } });
      } catch (error) {
        // Other rows still run: one broken comparison should not hide the rest.
        console.error(`row "${row.name}" failed: ${(error as Error).stack ?? String(error)}`);
        outcomes.push({ row, error: error as Error });
      }
    }

    const report = formatReport({ date: new Date(), machine, h2load, settings, startedWith: context.startedWith, outcomes });
    console.log(`\n${report}`);
    mkdirSync(dirname(resultsPath), { recursive: true });
    writeFileSync(resultsPath, report);
    console.log(`written to ${resultsPath}`);
    succeeded = outcomes.every((outcome) => 'measurement' in outcome);
    return succeeded ? 0 : 1;
  } finally {
    await context.close();
    await stopAllProcesses();
    // On failure the servers' logs and h2load's output are what explain it.
    if (succeeded) rmSync(scratchDirectory, { recursive: true, force: true });
    else console.error(`logs kept in ${scratchDirectory}`);
  }
}

process.once('exit', killAllProcessesNow);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    stopping = true;
    console.error(`\n${signal}: stopping every process the bench started`);
    void stopAllProcesses().finally(() => process.exit(130));
  });
}
const limit = setTimeout(() => {
  stopping = true;
  console.error(`the bench did not finish within ${overallLimitMilliseconds / 1_000} s; stopping`);
  void stopAllProcesses().finally(() => process.exit(1));
}, overallLimitMilliseconds);
limit.unref();

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  },
);
