// The printed buf/validate/validate.proto must compile to the descriptor
// @bufbuild/protovalidate embeds, up to the options the printer leaves out:
// every message, field number, type, label, oneof, range and extension.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clone, fromBinary, toJson } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema, FileDescriptorSetSchema, type FileDescriptorProto } from '@bufbuild/protobuf/wkt';
import { file_buf_validate_validate } from '@bufbuild/protovalidate/gen/buf/validate/validate_pb.js';
import { expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs build script, without types
import { printProto } from '../../scripts/print-proto.mjs';

const BUF = join(import.meta.dirname, '..', '..', 'node_modules', '.bin', 'buf');

/** Options, source info and JSON names dropped: what the printer promises to keep is left. */
function structure(file: FileDescriptorProto): unknown {
  const json = toJson(FileDescriptorProtoSchema, clone(FileDescriptorProtoSchema, file)) as Record<string, unknown>;
  const strip = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(strip);
    if (value === null || typeof value !== 'object') return value;
    return Object.fromEntries(
      Object.entries(value)
        .filter(([key]) => !['options', 'sourceCodeInfo', 'jsonName'].includes(key))
        .map(([key, inner]) => [key, strip(inner)]),
    );
  };
  return strip(json);
}

it('prints validate.proto so that it compiles to the same descriptor as the package embeds', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-print-proto-'));
  mkdirSync(join(dir, 'buf', 'validate'), { recursive: true });
  writeFileSync(join(dir, 'buf', 'validate', 'validate.proto'), (printProto as (file: FileDescriptorProto, header: string[]) => string)(file_buf_validate_validate.proto, ['test']));
  writeFileSync(join(dir, 'buf.yaml'), 'version: v2\n');
  execFileSync(BUF, ['build', '--exclude-imports', '-o', join(dir, 'image.binpb')], { cwd: dir, stdio: 'pipe' });
  const image = fromBinary(FileDescriptorSetSchema, readFileSync(join(dir, 'image.binpb')));
  const printed = image.file.find((file) => file.name === 'buf/validate/validate.proto')!;
  expect(structure(printed)).toEqual(structure(file_buf_validate_validate.proto));
});
