// Rewrites the settings table in README.md from `--settings-table`, so the
// README cannot drift from src/config/settings.ts (test/docs/readme.test.ts checks it).
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

const table = execFileSync(process.execPath, ['--import', 'tsx', 'src/main.ts', '--settings-table'], { encoding: 'utf8' });
const readme = readFileSync('README.md', 'utf8');
const updated = readme.replace(/<!-- settings:start -->\n[\s\S]*?<!-- settings:end -->/, `<!-- settings:start -->\n${table}<!-- settings:end -->`);
writeFileSync('README.md', updated);
console.log(updated === readme ? 'README settings table already current' : 'README settings table updated');
