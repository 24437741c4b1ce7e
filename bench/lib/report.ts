import type { MachineDescription } from './machine.js';
import type { LoadSettings } from './h2load.js';
import type { Measurement, Row } from './row.js';

export type RowOutcome = { row: Row; measurement: Measurement } | { row: Row; error: Error };

export interface Report {
  readonly date: Date;
  readonly machine: MachineDescription;
  /** Versions of the load generators, one per entry. */
  readonly tools: readonly string[];
  readonly settings: LoadSettings;
  readonly startedWith: ReadonlyMap<string, string>;
  readonly outcomes: readonly RowOutcome[];
  /** Extra sections (CPU profile summaries), printed last. */
  readonly appendix?: readonly string[];
}

/** Markdown, so the same text prints in a terminal and pastes into the docs. */
/** Two decimals; three below a millisecond, where one call in flight lives (0.05 ms against 0.06 ms hides a fifth). */
function milliseconds(value: number): string {
  return value.toFixed(value < 1 ? 3 : 2);
}

export function formatReport(report: Report): string {
  const [baseline] = report.outcomes;
  const baselineRate = baseline && 'measurement' in baseline ? baseline.measurement.callsPerSecond : undefined;
  const { machine, settings } = report;
  const lines = [
    `## Tally bench, ${report.date.toISOString()}`,
    '',
    `| row | calls/s | p50 ms | p99 ms | ratio to ${baseline?.row.name ?? 'baseline'} |`,
    '|---|---:|---:|---:|---:|',
    ...report.outcomes.map((outcome) => {
      if ('error' in outcome) return `| ${outcome.row.name} | failed: ${firstLine(outcome.error.message)} | | | |`;
      const { callsPerSecond, p50Milliseconds, p99Milliseconds } = outcome.measurement;
      const ratio = baselineRate === undefined ? 'n/a' : (callsPerSecond / baselineRate).toFixed(2);
      return `| ${outcome.row.name} | ${Math.round(callsPerSecond).toLocaleString('en-US')} | ${milliseconds(p50Milliseconds)} | ${milliseconds(p99Milliseconds)} | ${ratio} |`;
    }),
    '',
    ...openLoopTable(report.outcomes),
    `Machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGibibytes} GiB, ${machine.kernel}; ` +
      `Node.js ${machine.node}; ${machine.redis}; ${report.tools.join('; ')}; load average before the run ${machine.loadBefore.toFixed(2)}.`,
    '',
    `Settings: gRPC rows h2load -c ${settings.connections} -m ${settings.streamsPerConnection} -t ${settings.threads}; ` +
      `HTTP/1.1 rows wrk -c ${settings.connections} -t ${settings.threads} (one request in flight per connection); ` +
      `each a ${settings.warmUpSeconds} s warm-up run, then ${settings.durationSeconds} s measured. ` +
      'calls/s is the load generator\'s rate; h2load p50 and p99 are nearest-rank over every request in its --log-file, ' +
      'wrk\'s come from its latency histogram. Each row is checked: the exact request was answered correctly (active, the issued token) ' +
      'before and after the load, and under load h2load\'s response bytes add up to that verified answer for every request, ' +
      'the open-loop generator compares every answer with it byte for byte, and wrk\'s Lua hook checks every response body. ' +
      'Open-loop rows send at a fixed rate, evenly spaced over the same connections whatever the answers, and time each call from its intended send time.',
    '',
    'Rows:',
    ...report.outcomes.map((outcome) => {
      const details = 'measurement' in outcome ? ` ${outcome.measurement.notes.join('; ')}.\n  \`${outcome.measurement.command}\`` : '';
      return `- ${outcome.row.name}: ${outcome.row.description}.${details}`;
    }),
    '',
    'Processes:',
    ...[...report.startedWith].map(([name, how]) => `- ${name}: ${how}`),
    '',
    ...(report.appendix ?? []),
  ];
  return lines.join('\n');
}

/** The open-loop rows' whole distribution: latency from each call's intended send time. */
function openLoopTable(outcomes: readonly RowOutcome[]): string[] {
  const measured = outcomes.flatMap((outcome) =>
    'measurement' in outcome && outcome.measurement.openLoop !== undefined
      ? [{ name: outcome.row.name, result: outcome.measurement.openLoop, unchecked: outcome.measurement.generatorCheckFailed !== undefined }]
      : [],
  );
  if (measured.length === 0) return [];
  const ms = (value: number): string => value.toFixed(2);
  return [
    'Open loop, latency in ms from each call\'s intended send time:',
    '',
    '| row | asked calls/s | sent calls/s | p50 | p90 | p99 | p99.9 | max | unanswered | generator |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---|',
    ...measured.map(({ name, result, unchecked }) => {
      const { latency } = result;
      const generator = [
        result.saturated === undefined ? 'kept the rate' : `**saturated**: ${result.saturated}`,
        ...(unchecked ? ['**unchecked** (failed its check on the bare server in this run)'] : []),
      ].join('; ');
      return (
        `| ${name} | ${result.targetCallsPerSecond.toLocaleString('en-US')} | ${Math.round(result.achievedCallsPerSecond).toLocaleString('en-US')} | ` +
        `${ms(latency.p50)} | ${ms(latency.p90)} | ${ms(latency.p99)} | ${ms(latency.p999)} | ${ms(latency.max)} | ${result.unanswered} | ${generator} |`
      );
    }),
    '',
  ];
}

function firstLine(text: string): string {
  return (text.split('\n')[0] ?? '').replaceAll('|', '\\|').slice(0, 240);
}
