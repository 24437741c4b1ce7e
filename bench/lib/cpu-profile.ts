// Reads a V8 CPU profile (node --cpu-prof) and says where the time went: self time
// by function and by module, the module being an npm package, a node: internal
// or a file of Tally's own. Enough to see what a row pays for without a viewer.
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly hitCount?: number;
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface SelfTime {
  readonly name: string;
  readonly milliseconds: number;
  /** Of the busy time: idle excluded, so the shares say where the work went. */
  readonly share: number;
}

export interface ProfileSummary {
  readonly totalMilliseconds: number;
  readonly idleMilliseconds: number;
  readonly byFunction: readonly SelfTime[];
  readonly byModule: readonly SelfTime[];
}

export function summarizeCpuProfile(path: string, projectRoot: string, top = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  // Each sample's time is the delta to the next one; the last sample gets none.
  const selfMicroseconds = new Map<number, number>();
  for (let index = 0; index < profile.samples.length; index++) {
    const id = profile.samples[index]!;
    const delta = profile.timeDeltas[index + 1] ?? 0;
    selfMicroseconds.set(id, (selfMicroseconds.get(id) ?? 0) + delta);
  }
  const byFunction = new Map<string, number>();
  const byModule = new Map<string, number>();
  let idle = 0;
  let total = 0;
  for (const [id, microseconds] of selfMicroseconds) {
    const node = nodes.get(id);
    if (node === undefined) continue;
    total += microseconds;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') {
      idle += microseconds;
      continue;
    }
    const module = moduleOf(url, functionName, projectRoot);
    const name = url === '' ? (functionName.startsWith('(') ? functionName : `${functionName || '(anonymous)'} (native)`) : `${functionName || '(anonymous)'} ${module}:${lineNumber + 1}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + microseconds);
    byModule.set(module, (byModule.get(module) ?? 0) + microseconds);
  }
  const busy = total - idle;
  const ranked = (times: Map<string, number>): SelfTime[] =>
    [...times]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, microseconds]) => ({ name, milliseconds: microseconds / 1_000, share: busy > 0 ? microseconds / busy : 0 }));
  return { totalMilliseconds: total / 1_000, idleMilliseconds: idle / 1_000, byFunction: ranked(byFunction), byModule: ranked(byModule) };
}

/** An npm package, a file of node's own, V8's pseudo-frames (GC, program), native code or a project file. */
function moduleOf(url: string, functionName: string, projectRoot: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return url;
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  const packageMatch = path.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/g);
  if (packageMatch !== null) return packageMatch[packageMatch.length - 1]!.slice('node_modules/'.length);
  return path.startsWith(projectRoot) ? relative(projectRoot, path) : path;
}

/** With the number of calls the process answered, each line also says its microseconds per call. */
export function formatProfileSummary(title: string, summary: ProfileSummary, calls?: number): string {
  const busySeconds = (summary.totalMilliseconds - summary.idleMilliseconds) / 1_000;
  const perCall = calls !== undefined && calls > 0;
  const microsecondsPerCall = (milliseconds: number): string => (perCall ? ` ${((milliseconds * 1_000) / calls).toFixed(1)} |` : '');
  const table = (heading: string, times: readonly SelfTime[]): string[] => [
    `| ${heading} | self ms |${perCall ? ' µs per call |' : ''} share of busy time |`,
    `|---|---:|${perCall ? '---:|' : ''}---:|`,
    ...times.map(
      (time) =>
        `| ${time.name.replaceAll('|', '\\|')} | ${Math.round(time.milliseconds).toLocaleString('en-US')} |${microsecondsPerCall(time.milliseconds)} ${(time.share * 100).toFixed(1)}% |`,
    ),
  ];
  const callsLine = perCall
    ? ` ${calls.toLocaleString('en-US')} calls answered: ${((busySeconds * 1e6) / calls).toFixed(0)} µs of busy main thread per call (start-up included).`
    : '';
  return [
    `### ${title}`,
    '',
    `${(summary.totalMilliseconds / 1_000).toFixed(1)} s profiled, ${busySeconds.toFixed(1)} s busy (the rest idle).${callsLine}`,
    '',
    ...table('module', summary.byModule),
    '',
    ...table('function (self time)', summary.byFunction),
    '',
  ].join('\n');
}
