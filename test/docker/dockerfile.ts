// A reader for the small part of the Dockerfile syntax Tally's Dockerfile uses:
// enough to check its promises and to replay its steps without a Docker engine.
// Anything it does not understand is an error, never silently skipped.

export interface Instruction {
  /** Upper case: FROM, RUN, COPY, ... */
  readonly keyword: string;
  /** Leading `--name=value` options (`--from=build`, `--interval=10s`). */
  readonly flags: Readonly<Record<string, string>>;
  /** The rest of the instruction, continuation lines joined. */
  readonly argument: string;
  readonly line: number;
}

export interface Stage {
  readonly base: string;
  readonly name: string | undefined;
  readonly instructions: readonly Instruction[];
}

export function parseDockerfile(text: string): Stage[] {
  const stages: { base: string; name: string | undefined; instructions: Instruction[] }[] = [];
  const lines = text.split('\n');
  for (let index = 0; index < lines.length; index++) {
    const startLine = index + 1;
    let logical = lines[index]!.trim();
    if (logical === '' || logical.startsWith('#')) continue;
    while (logical.endsWith('\\') && index + 1 < lines.length) {
      index++;
      const next = lines[index]!.trim();
      // Comment lines inside a continuation are dropped, as Docker does.
      if (next.startsWith('#')) continue;
      logical = `${logical.slice(0, -1).trimEnd()} ${next}`;
    }
    const [, keyword = '', rest = ''] = logical.match(/^(\S+)\s*(.*)$/) ?? [];
    let argument = rest;
    const flags: Record<string, string> = {};
    for (let flag = argument.match(/^--([\w-]+)=(\S+)\s*/); flag; flag = argument.match(/^--([\w-]+)=(\S+)\s*/)) {
      flags[flag[1]!] = flag[2]!;
      argument = argument.slice(flag[0].length);
    }
    const instruction: Instruction = { keyword: keyword.toUpperCase(), flags, argument, line: startLine };
    if (instruction.keyword === 'FROM') {
      const [base = '', as, name] = argument.split(/\s+/);
      if (base === '' || (as !== undefined && (as.toUpperCase() !== 'AS' || name === undefined))) {
        throw new Error(`line ${startLine}: cannot read FROM ${argument}`);
      }
      stages.push({ base, name, instructions: [] });
      continue;
    }
    const stage = stages.at(-1);
    if (stage === undefined) throw new Error(`line ${startLine}: ${instruction.keyword} before any FROM`);
    stage.instructions.push(instruction);
  }
  return stages;
}

/** The command of CMD, RUN or HEALTHCHECK CMD: exec form as written, shell form through /bin/sh -c. */
export function commandOf(argument: string): string[] {
  const trimmed = argument.trim();
  if (trimmed.startsWith('[')) {
    const parsed: unknown = JSON.parse(trimmed);
    if (!Array.isArray(parsed) || parsed.length === 0 || !parsed.every((part) => typeof part === 'string')) {
      throw new Error(`not an exec-form command: ${trimmed}`);
    }
    return parsed;
  }
  return ['/bin/sh', '-c', trimmed];
}

/** `ENV A=1 B=2` (or the old `ENV A 1`) as name/value pairs; quotes removed. */
export function environmentOf(argument: string): Record<string, string> {
  const oldForm = argument.match(/^([A-Za-z_][A-Za-z0-9_]*)\s+([^=]*)$/);
  if (oldForm) return { [oldForm[1]!]: oldForm[2]!.trim() };
  const pairs: Record<string, string> = {};
  for (const pair of argument.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|\S*)/g)) {
    const value = pair[2]!;
    pairs[pair[1]!] = value.startsWith('"') ? value.slice(1, -1).replace(/\\(.)/g, '$1') : value;
  }
  return pairs;
}
