// node --import tsx bench/summarize-profile.ts <file.cpuprofile>...: self time by module
// and by function, as `npm run bench -- --profile` prints for each Tally process.
import { basename, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatProfileSummary, summarizeCpuProfile } from './lib/cpu-profile.js';

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const paths = process.argv.slice(2);
if (paths.length === 0) {
  console.error('usage: summarize-profile.ts <file.cpuprofile>...');
  process.exit(2);
}
for (const path of paths) console.log(formatProfileSummary(basename(path), summarizeCpuProfile(path, projectRoot)));
