// What every subcommand is: its words, its options in util.parseArgs form,
// the help it prints, and what it does with the parsed values.
import type { ParseArgsConfig } from 'node:util';
import type { OutputFormat } from './output.js';

export interface CommandContext {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  environment: NodeJS.ProcessEnv;
  output: OutputFormat;
  /** Reads standard input to its end (a token given as "-"). */
  readStdin(): string;
  /** Writes to standard error: notes for the person, never part of the result. */
  note(text: string): void;
}

export interface Command {
  /** The words that select it: ['keys', 'list']. */
  words: readonly string[];
  /** `tally keys list [options]` and what follows. */
  usage: string;
  summary: string;
  options: NonNullable<ParseArgsConfig['options']>;
  /** Whether it calls Tally, and so takes the connection options. */
  callsTally: boolean;
  /** Positionals allowed after the words (0 by default). */
  positionals?: { min: number; max: number; name: string };
  /** The value to print. */
  run(context: CommandContext): Promise<unknown>;
}
