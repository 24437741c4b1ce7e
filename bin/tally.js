#!/usr/bin/env node
// The `tally` command (package.json "bin"): `npx tally …`. In a checkout it runs
// the TypeScript source through tsx, so it is never older than the code beside
// it; in the image, where there is no src/ and no tsx, the compiled dist/.
import { existsSync } from 'node:fs';

const source = new URL('../src/cli/main.ts', import.meta.url);
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(source.href);
} else {
  await import('../dist/cli/main.js');
}
