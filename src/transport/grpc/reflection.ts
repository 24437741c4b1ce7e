// Server reflection (grpc.reflection.v1 and v1alpha) so grpcurl and buf curl
// can list, describe and call every service with no .proto files. The
// @grpc/reflection package wants a proto-loader PackageDefinition but reads
// only the serialized FileDescriptorProtos in it, so those are made from the
// protobuf-es descriptors Tally already embeds: no .proto is loaded at run time.

import type * as grpc from '@grpc/grpc-js';
import { toBinary, type DescFile } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import { ReflectionService } from '@grpc/reflection';

type PackageDefinition = ConstructorParameters<typeof ReflectionService>[0];

/** The files and everything they import, each once. */
function withDependencies(files: readonly DescFile[]): DescFile[] {
  const seen = new Map<string, DescFile>();
  const visit = (file: DescFile) => {
    if (seen.has(file.proto.name)) return;
    seen.set(file.proto.name, file);
    file.dependencies.forEach(visit);
  };
  files.forEach(visit);
  return [...seen.values()];
}

export function createReflection(files: readonly DescFile[]): { addToServer(server: grpc.Server): void } {
  const fileDescriptorProtos = withDependencies(files).map((file) =>
    Buffer.from(toBinary(FileDescriptorProtoSchema, file.proto)),
  );
  // One entry is enough: the package indexes every file of every entry by name.
  const definition = {
    'tally.reflection.files': { format: 'Protocol Buffer 3 FileDescriptorProto', type: {}, fileDescriptorProtos },
  } as unknown as PackageDefinition;
  return new ReflectionService(definition);
}
