// `tally`: the operator's command. Subcommands call a running Tally over gRPC
// (issue, introspect, revoke, keys) or work on files and settings without one
// (caller, check). Every failure ends in one line on standard error and a
// non-zero exit: 2 for bad arguments, 1 for everything else.

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Command } from './command.js';
import { finishRoll, newCaller, rollCaller } from './commands/callers.js';
import { checkCallers, checkSettings } from './commands/check.js';
import { listKeys, retireAlgorithm, revokeKey, rotateKeys, setDefaultAlgorithm } from './commands/keys.js';
import { introspect, issue, revoke } from './commands/tokens.js';
import { CONNECTION_HELP, CONNECTION_OPTIONS } from './connection.js';
import { render, type OutputFormat } from './output.js';
import { CliError, EXIT_FAILURE, usageError } from './usage-error.js';

const COMMANDS: readonly Command[] = [
  issue, introspect, revoke, listKeys, rotateKeys, setDefaultAlgorithm, retireAlgorithm, revokeKey, newCaller, rollCaller, finishRoll, checkCallers, checkSettings,
];

const GLOBAL_OPTIONS = {
  output: { type: 'string', short: 'o' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function overview(): string {
  const width = Math.max(...COMMANDS.map((command) => command.words.join(' ').length));
  return [
    'Usage: tally COMMAND [options]',
    '',
    'Commands:',
    ...COMMANDS.map((command) => `  ${command.words.join(' ').padEnd(width)}  ${command.summary}`),
    '',
    'Output: --output table (default) or --output json (also --json).',
    '',
    CONNECTION_HELP,
    '',
    'tally COMMAND --help shows the options of one command. The server itself is `node dist/main.js` (npm start).',
    '',
  ].join('\n');
}

function commandHelp(command: Command): string {
  return `Usage: ${command.usage}\n\n${command.summary}\n${command.callsTally ? `\n${CONNECTION_HELP}\n` : ''}`;
}

function findCommand(argv: readonly string[]): Command | undefined {
  return COMMANDS.find((command) => command.words.every((word, index) => argv[index] === word));
}

function outputFormat(values: Record<string, unknown>): OutputFormat {
  if (values.json === true) return 'json';
  const format = values.output ?? 'table';
  if (format !== 'table' && format !== 'json') throw usageError(`--output: expected table or json, got ${JSON.stringify(format)}`);
  return format;
}

export async function runCli(argv: readonly string[], environment: NodeJS.ProcessEnv): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    process.stdout.write(overview());
    return 0;
  }
  const command = findCommand(argv);
  if (command === undefined) {
    const group = COMMANDS.filter((candidate) => candidate.words[0] === argv[0]);
    if (group.length > 0) throw usageError(`${argv[0]}: expected one of ${group.map((candidate) => candidate.words.join(' ')).join(', ')}`);
    throw usageError(`unknown command ${JSON.stringify(argv[0])}`);
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv.slice(command.words.length),
      options: { ...GLOBAL_OPTIONS, ...command.options, ...(command.callsTally ? CONNECTION_OPTIONS : {}) },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw usageError(`${command.words.join(' ')}: ${(error as Error).message.split('\n')[0]!.replace(/\. To specify a positional.*$/, '')}`);
  }
  if (parsed.values.help === true) {
    process.stdout.write(commandHelp(command));
    return 0;
  }
  const expected = command.positionals ?? { min: 0, max: 0, name: '' };
  if (parsed.positionals.length < expected.min) throw usageError(`${command.words.join(' ')}: ${expected.name} is missing`);
  if (parsed.positionals.length > expected.max) {
    throw usageError(`${command.words.join(' ')}: unexpected argument ${JSON.stringify(parsed.positionals[expected.max])}`);
  }
  const output = outputFormat(parsed.values);
  const result = await command.run({
    values: parsed.values as Record<string, string | boolean | string[] | undefined>,
    positionals: parsed.positionals,
    environment,
    output,
    readStdin: () => readFileSync(0, 'utf8'),
    note: (text) => process.stderr.write(`${text}\n`),
  });
  process.stdout.write(render(result, output));
  return 0;
}

/** One line for the operator: a CliError as it is, anything else named but never with its stack. */
function failureLine(error: unknown): { line: string; code: number } {
  if (error instanceof CliError) return { line: error.message, code: error.exitCode };
  const message = error instanceof Error ? error.message : String(error);
  return { line: `unexpected failure: ${message.split('\n')[0]}`, code: EXIT_FAILURE };
}

function fail(error: unknown): never {
  const { line, code } = failureLine(error);
  process.stderr.write(`tally: ${line}\n`);
  process.exit(code);
}

process.on('uncaughtException', fail);
process.on('unhandledRejection', fail);
try {
  process.exitCode = await runCli(process.argv.slice(2), process.env);
} catch (error) {
  fail(error);
}
