// npm run bench [-- [--profile] <text>...]: Tally beside a bare @grpc/grpc-js server,
// a peer (node-oidc-provider) and in-process JWT verification, on this machine, in
// one run. With words, only the rows whose names contain one of them run, or that
// are named exactly as a word starting with "=" (the baseline always does, or no
// ratio means anything). --profile has the bare server
// and every Tally process write a V8 CPU profile and adds a summary of each to the report.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { killAllProcessesNow, stopAllProcesses } from './lib/child-processes.js';
import { createBenchContext, type ProfiledProcess } from './lib/context.js';
import { formatProfileSummary, summarizeCpuProfile } from './lib/cpu-profile.js';
import { h2loadVersion, type LoadSettings } from './lib/h2load.js';
import { describeMachine } from './lib/machine.js';
import { formatReport, type RowOutcome } from './lib/report.js';
import { wrkMissingHint, wrkVersion, wrkAvailable } from './lib/wrk.js';
import { rows } from './rows/index.js';

// Fixed, so runs compare: 160 streams in flight keep a single-threaded server
// busy, and one load-generator thread leaves the other core to the server. The
// open-loop generator needs no connections to keep calls in flight (it never waits
// for an answer), so it uses a few, as a service's client channels would.
const settings: LoadSettings = {
  connections: 16,
  streamsPerConnection: 10,
  threads: 1,
  warmUpSeconds: 3,
  durationSeconds: 10,
  openLoopConnections: 4,
};
// Past this the bench gives up and stops everything: a hung server must not hang CI or a shell.
const overallLimitMilliseconds = 600_000;

// Set by a signal or the time limit, so the loop starts no row while everything is being stopped.
let stopping = false;

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const resultsDirectory = join(projectRoot, 'bench', 'results');
const resultsPath = join(resultsDirectory, 'latest.md');

/** A word picks the rows whose names contain it; "=name" picks the row of exactly that name (not the open-loop rows built on it). */
function matches(name: string, word: string): boolean {
  return word.startsWith('=') ? name === word.slice(1) : name.includes(word);
}

async function main(): Promise<number> {
  const machine = describeMachine();
  const scratchDirectory = mkdtempSync(join(tmpdir(), 'tally-bench-'));
  const words = process.argv.slice(2);
  const profile = words.includes('--profile');
  const filters = words.filter((word) => word !== '--profile');
  // Kept after the run (bench/results is ignored by git), unlike the scratch directory.
  const profileDirectory = profile ? join(resultsDirectory, 'profiles', new Date().toISOString().replaceAll(':', '-')) : undefined;
  if (profileDirectory !== undefined) mkdirSync(profileDirectory, { recursive: true });
  const context = createBenchContext({ projectRoot, scratchDirectory, settings, profileDirectory });
  let succeeded = false;
  let report = '';
  try {
    const tools = [await h2loadVersion(join(scratchDirectory, 'h2load-version.txt')), await wrkVersion(join(scratchDirectory, 'wrk-version.txt'))];
    // The HTTP/1.1 rows fail on their own without wrk; say why once, up front.
    if (!wrkAvailable()) console.warn(wrkMissingHint);
    const [baseline, ...others] = rows;
    const selected = [baseline, ...others.filter((row) => filters.length === 0 || filters.some((text) => matches(row.name, text)))];

    const outcomes: RowOutcome[] = [];
    for (const row of selected) {
      if (stopping) break;
      console.log(`measuring: ${row.name}`);
      // Other work on the machine skews a row; the load average beside it says how much there was.
      const loadBefore = loadavg()[0] ?? 0;
      try {
        const measurement = await context.measure(row);
        outcomes.push({ row, measurement: { ...measurement, notes: [...measurement.notes, `load average ${loadBefore.toFixed(2)} before the row`] } });
      } catch (error) {
        // Other rows still run: one broken comparison should not hide the rest.
        console.error(`row "${row.name}" failed: ${(error as Error).stack ?? String(error)}`);
        outcomes.push({ row, error: error as Error });
      }
    }

    report = formatReport({ date: new Date(), machine, tools, settings, startedWith: context.startedWith, outcomes });
    console.log(`\n${report}`);
    mkdirSync(resultsDirectory, { recursive: true });
    writeFileSync(resultsPath, report);
    console.log(`written to ${resultsPath}`);
    succeeded = outcomes.every((outcome) => !('error' in outcome));
    return succeeded ? 0 : 1;
  } finally {
    await context.close();
    await stopAllProcesses();
    // Node writes a profile as the process exits, so only now are they complete.
    if (profileDirectory !== undefined && report !== '') {
      const summaries = profileSummaries(profileDirectory, context.profiledProcesses);
      console.log(`\n${summaries}`);
      writeFileSync(resultsPath, `${report}\n${summaries}`);
    }
    // On failure the servers' logs and the load generators' output are what explain it.
    if (succeeded) rmSync(scratchDirectory, { recursive: true, force: true });
    else console.error(`logs kept in ${scratchDirectory}`);
  }
}

function profileSummaries(directory: string, processes: ReadonlyMap<number, ProfiledProcess>): string {
  // CPU.<date>.<time>.<pid>.<thread>.<sequence>.cpuprofile. Thread 0 serves the calls; the
  // others are module loaders (tsx's), busy at start-up only.
  const files = existsSync(directory) ? readdirSync(directory).filter((name) => name.endsWith('.cpuprofile') && name.split('.')[4] === '0') : [];
  if (files.length === 0) return `## CPU profiles\n\nNo main-thread profile was written to ${directory}.\n`;
  const sections = files.map((name) => {
    const pid = Number(name.split('.')[3]);
    const profiled = processes.get(pid);
    const title = `${profiled?.label ?? `process ${pid}`}, main thread (${join(directory, name)})`;
    return formatProfileSummary(title, summarizeCpuProfile(join(directory, name), projectRoot), profiled?.calls());
  });
  return ['## CPU profiles', '', 'Self time on each process\'s main thread over its whole life, warm-ups included.', '', ...sections].join('\n');
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
