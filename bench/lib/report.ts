import type { MachineDescription } from './machine.js';
import type { LoadSettings } from './h2load.js';
import type { Measurement, Row } from './row.js';

export type RowOutcome = { row: Row; measurement: Measurement } | { row: Row; error: Error };

export interface Report {
  readonly date: Date;
  readonly machine: MachineDescription;
  readonly h2load: string;
  readonly settings: LoadSettings;
  readonly startedWith: ReadonlyMap<string, string>;
  readonly outcomes: readonly RowOutcome[];
}

/** Markdown, so the same text prints in a terminal and pastes into the docs. */
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
      return `| ${outcome.row.name} | ${Math.round(callsPerSecond).toLocaleString('en-US')} | ${p50Milliseconds.toFixed(2)} | ${p99Milliseconds.toFixed(2)} | ${ratio} |`;
    }),
    '',
    `Machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGibibytes} GiB, ${machine.kernel}; ` +
      `Node.js ${machine.node}; ${machine.redis}; ${report.h2load}; load average before the run ${machine.loadBefore.toFixed(2)}.`,
    '',
    `Settings: h2load -c ${settings.connections} -m ${settings.streamsPerConnection} -t ${settings.threads}, ` +
      `a ${settings.warmUpSeconds} s warm-up run, then ${settings.durationSeconds} s measured (-D). ` +
      'calls/s is h2load\'s req/s; p50 and p99 are nearest-rank over every request in h2load\'s --log-file. ' +
      'Each row is checked: the exact body was answered grpc-status 0 and active before and after the load, ' +
      'and the response bytes under load add up to that verified answer for every request.',
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
  ];
  return lines.join('\n');
}

function firstLine(text: string): string {
  return (text.split('\n')[0] ?? '').replaceAll('|', '\\|').slice(0, 160);
}
