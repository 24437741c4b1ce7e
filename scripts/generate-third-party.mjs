// Generates code for the third-party protos Tally serves, from the copies
// their npm packages ship (nothing is fetched; nothing is committed):
//   grpc.health.v1            grpc-health-check
//   grpc.reflection.v1(alpha) @grpc/reflection
//   envoy.service.auth.v3     @grpc/grpc-js-xds (Envoy's own protos and deps)
// and prints buf/validate/validate.proto from the descriptor that
// @bufbuild/protovalidate embeds (no package ships its source) into
// build/protovalidate, the buf module our protovalidate annotations import.
// Output goes to src/gen/<package dirs> beside our committed src/gen/tally,
// and is ignored by git. Runs before every build, type check and test.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { file_buf_validate_validate } from '@bufbuild/protovalidate/gen/buf/validate/validate_pb.js';
import { printProto } from './print-proto.mjs';

const require = createRequire(import.meta.url);
const root = resolve(dirname(new URL(import.meta.url).pathname), '..');
const packageDir = (name) => dirname(require.resolve(`${name}/package.json`, { paths: [root] }));

const sources = [
  // [module dir in the workspace, files to copy: [from, to]]
  ['health', [[join(packageDir('grpc-health-check'), 'proto/health/v1/health.proto'), 'grpc/health/v1/health.proto']]],
  ['reflection', [[join(packageDir('@grpc/reflection'), 'build/proto/grpc/reflection'), 'grpc/reflection']]],
  ...['envoy-api', 'googleapis', 'xds', 'protoc-gen-validate'].map((dep) => [dep, [[join(packageDir('@grpc/grpc-js-xds'), 'deps', dep), '.']]]),
];
// Only these files (and what they import) are generated.
const entryPoints = [
  'health/grpc/health/v1/health.proto',
  'reflection/grpc/reflection/v1/reflection.proto',
  'reflection/grpc/reflection/v1alpha/reflection.proto',
  'envoy-api/envoy/service/auth/v3/external_auth.proto',
];

// Printed on every run (it is small), before buf lint and buf generate read it.
// Written aside and renamed, so a concurrent buf never reads half a file.
const validateProto = join(root, 'build/protovalidate/buf/validate/validate.proto');
const validateSource = printProto(file_buf_validate_validate.proto, [
  'Printed by scripts/generate-third-party.mjs from the descriptor in @bufbuild/protovalidate.',
  'Options are left out; names, numbers and types are the descriptor\'s. Do not edit.',
]);
if (!existsSync(validateProto) || readFileSync(validateProto, 'utf8') !== validateSource) {
  mkdirSync(dirname(validateProto), { recursive: true });
  const partial = `${validateProto}.${process.pid}`;
  writeFileSync(partial, validateSource);
  renameSync(partial, validateProto);
}

const out = join(root, 'src/gen');
const outputDirs = ['grpc', 'envoy', 'udpa', 'xds', 'validate', 'google'];

// Skip when nothing that shapes the output changed: builds and test runs
// call this often, sometimes several at once, and the output is large.
const stampPath = join(out, '.third-party-stamp');
const stamp = createHash('sha256')
  .update(readFileSync(new URL(import.meta.url)))
  .update(['grpc-health-check', '@grpc/reflection', '@grpc/grpc-js-xds', '@bufbuild/protoc-gen-es'].map((name) => `${name}@${require(join(packageDir(name), 'package.json')).version}`).join(','))
  .digest('hex');
if (existsSync(stampPath) && readFileSync(stampPath, 'utf8') === stamp && outputDirs.every((dir) => existsSync(join(out, dir)))) {
  process.exit(0);
}

const workspace = mkdtempSync(join(tmpdir(), 'tally-third-party-'));
try {
  for (const [module, copies] of sources) {
    for (const [from, to] of copies) {
      if (!existsSync(from)) throw new Error(`missing ${from}: run npm ci`);
      const target = join(workspace, module, to);
      mkdirSync(dirname(target), { recursive: true });
      cpSync(from, target, { recursive: true, filter: (path) => !path.includes('/sample') });
    }
  }
  writeFileSync(join(workspace, 'buf.yaml'), `version: v2\nmodules:\n${sources.map(([module]) => `  - path: ${module}\n`).join('')}`);
  const staging = join(workspace, 'out');
  writeFileSync(
    join(workspace, 'buf.gen.yaml'),
    [
      'version: v2',
      'inputs:',
      '  - directory: .',
      '    paths:',
      ...entryPoints.map((path) => `      - ${path}`),
      'plugins:',
      `  - local: ${join(root, 'node_modules/.bin/protoc-gen-es')}`,
      `    out: ${staging}`,
      '    opt: [target=ts, import_extension=js]',
      '    include_imports: true',
      '',
    ].join('\n'),
  );
  execFileSync(join(root, 'node_modules/.bin/buf'), ['generate'], { cwd: workspace, stdio: 'inherit' });
  // Swap each directory in whole, so a build running beside this one sees
  // the old files or the new ones, never none.
  for (const dir of outputDirs) {
    const retired = join(workspace, `retired-${dir}`);
    if (existsSync(join(out, dir))) renameSync(join(out, dir), retired);
    renameSync(join(staging, dir), join(out, dir));
  }
  writeFileSync(stampPath, stamp);
} finally {
  rmSync(workspace, { recursive: true, force: true });
}
