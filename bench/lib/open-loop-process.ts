// The open-loop generator as a process of its own, so it shares the machine with
// the server the way h2load does and its timers never wait on the bench's work.
//
// Usage: node --import tsx bench/lib/open-loop-process.ts <options.json> <result.json>
// The options file holds OpenLoopOptions with `body` and `expectedBody` in base64.
import { readFileSync, writeFileSync } from 'node:fs';
import { runOpenLoop, type OpenLoopOptions } from './open-loop.js';

export type OpenLoopProcessOptions = Omit<OpenLoopOptions, 'body' | 'expectedBody' | 'now'> & {
  readonly body: string;
  readonly expectedBody: string;
};

const [optionsPath, resultPath] = process.argv.slice(2);
if (optionsPath === undefined || resultPath === undefined) {
  console.error('usage: open-loop-process.ts <options.json> <result.json>');
  process.exit(2);
}
const options = JSON.parse(readFileSync(optionsPath, 'utf8')) as OpenLoopProcessOptions;
const result = await runOpenLoop({
  ...options,
  body: Buffer.from(options.body, 'base64'),
  expectedBody: Buffer.from(options.expectedBody, 'base64'),
});
writeFileSync(resultPath, JSON.stringify(result));
console.log(`open loop: ${result.answered} answered, ${result.wrong} wrong, ${result.unanswered} unanswered`);
