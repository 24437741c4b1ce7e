// node --import tsx bench/summarize-profile.ts <file.cpuprofile> [calls]: self time by
// module and by function, as `npm run bench -- --profile` prints for each process; with
// the number of calls the process answered, also microseconds per call.
import { basename, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatProfileSummary, summarizeCpuProfile } from './lib/cpu-profile.js';

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const [path, callsText] = process.argv.slice(2);
const calls = callsText === undefined ? undefined : Number(callsText);
if (path === undefined || (calls !== undefined && !(calls > 0))) {
  console.error('usage: summarize-profile.ts <file.cpuprofile> [calls]');
  process.exit(2);
}
console.log(formatProfileSummary(basename(path), summarizeCpuProfile(path, projectRoot), calls));
