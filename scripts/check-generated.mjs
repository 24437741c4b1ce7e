// Fails when the committed generated code differs from what `buf generate`
// makes from proto/ now, so a proto change cannot land without its code.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

// Our own protos' code only: third-party code is generated at build time and not committed.
const committed = 'src/gen/tally';
const scratch = mkdtempSync(join(tmpdir(), 'tally-gen-'));
try {
  const template = readFileSync('buf.gen.yaml', 'utf8').replace(/out: src\/gen/g, `out: ${scratch}`);
  const templatePath = join(scratch, 'buf.gen.yaml');
  writeFileSync(templatePath, template);
  execFileSync('npx', ['--no-install', 'buf', 'generate', '--template', templatePath], { stdio: 'inherit' });
  const list = (root) => {
    const out = [];
    const walk = (dir) => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) walk(path);
        else if (name !== 'buf.gen.yaml') out.push(relative(root, path));
      }
    };
    walk(root);
    return out.sort();
  };
  const fresh = list(join(scratch, 'tally'));
  const old = list(committed);
  const stale = [
    ...fresh.filter((f) => !old.includes(f) || readFileSync(join(scratch, 'tally', f), 'utf8') !== readFileSync(join(committed, f), 'utf8')),
    ...old.filter((f) => !fresh.includes(f)),
  ];
  if (stale.length > 0) {
    console.error(`generated code in ${committed} is stale; run \`npm run generate\` and commit:\n  ${stale.join('\n  ')}`);
    process.exit(1);
  }
  console.log(`generated code in ${committed} is up to date (${fresh.length} files)`);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
