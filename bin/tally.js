#!/usr/bin/env node
// The `tally` command (package.json "bin"): `npx tally …`. In a checkout it runs
// the TypeScript source through tsx, so it is never older than the code beside
// it; in the image, where there is no src/ and no tsx, the compiled dist/.
import { existsSync } from 'node:fs';

const source = new URL('../src/cli/main.ts', import.meta.url);
const compiled = new URL('../dist/cli/main.js', import.meta.url);

async function tsxRegister() {
  try {
    return (await import('tsx/esm/api')).register;
  } catch {
    // A checkout installed without dev dependencies: the compiled output, if built.
    return undefined;
  }
}

const register = existsSync(source) ? await tsxRegister() : undefined;
if (register !== undefined) {
  register();
  await import(source.href);
} else if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  process.stderr.write('tally: neither the source with its dev dependencies (npm ci) nor a build (npm run build) is here\n');
  process.exit(1);
}
