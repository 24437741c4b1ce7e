// Prints a FileDescriptorProto as .proto source: names, numbers, types,
// labels, oneofs, reserved and extension ranges and extensions, exactly as
// the descriptor has them; options are left out (they only matter to the
// file's own users, and imports of it need none). Used for
// buf/validate/validate.proto, whose source no npm package ships but whose
// descriptor @bufbuild/protovalidate embeds: buf compiles our protovalidate
// annotations against the printed file. Proto2 and proto3 files only.
import { isFieldSet } from '@bufbuild/protobuf';
import { FieldDescriptorProto_Label, FieldDescriptorProto_Type, FieldDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';

const MAX_FIELD_NUMBER_EXCLUSIVE = 536_870_912;
const SCALAR_NAMES = {
  [FieldDescriptorProto_Type.DOUBLE]: 'double',
  [FieldDescriptorProto_Type.FLOAT]: 'float',
  [FieldDescriptorProto_Type.INT64]: 'int64',
  [FieldDescriptorProto_Type.UINT64]: 'uint64',
  [FieldDescriptorProto_Type.INT32]: 'int32',
  [FieldDescriptorProto_Type.FIXED64]: 'fixed64',
  [FieldDescriptorProto_Type.FIXED32]: 'fixed32',
  [FieldDescriptorProto_Type.BOOL]: 'bool',
  [FieldDescriptorProto_Type.STRING]: 'string',
  [FieldDescriptorProto_Type.BYTES]: 'bytes',
  [FieldDescriptorProto_Type.UINT32]: 'uint32',
  [FieldDescriptorProto_Type.SFIXED32]: 'sfixed32',
  [FieldDescriptorProto_Type.SFIXED64]: 'sfixed64',
  [FieldDescriptorProto_Type.SINT32]: 'sint32',
  [FieldDescriptorProto_Type.SINT64]: 'sint64',
};

function typeOf(field) {
  if (field.type === FieldDescriptorProto_Type.GROUP) throw new Error(`${field.name}: groups are not supported`);
  // A leading dot makes the name fully qualified, so no scope rule can misread it.
  return SCALAR_NAMES[field.type] ?? field.typeName;
}

function labelOf(field, proto3) {
  if (field.label === FieldDescriptorProto_Label.REPEATED) return 'repeated ';
  if (field.label === FieldDescriptorProto_Label.REQUIRED) return 'required ';
  if (proto3) return field.proto3Optional ? 'optional ' : '';
  return 'optional ';
}

function quoted(value) {
  return JSON.stringify(value);
}

function ranges(list, inclusiveEnd) {
  return list
    .map(({ start, end }) => {
      const last = inclusiveEnd ? end : end - 1;
      if (!inclusiveEnd && end === MAX_FIELD_NUMBER_EXCLUSIVE) return `${start} to max`;
      return last === start ? `${start}` : `${start} to ${last}`;
    })
    .join(', ');
}

function printField(field, proto3, indent, withLabel) {
  const label = withLabel ? labelOf(field, proto3) : '';
  const extras = [];
  if (isFieldSet(field, FieldDescriptorProtoSchema.field.defaultValue)) {
    const text = field.type === FieldDescriptorProto_Type.STRING || field.type === FieldDescriptorProto_Type.BYTES ? quoted(field.defaultValue) : field.defaultValue;
    extras.push(`default = ${text}`);
  }
  const options = extras.length > 0 ? ` [${extras.join(', ')}]` : '';
  return `${indent}${label}${typeOf(field)} ${field.name} = ${field.number}${options};`;
}

function printEnum(enumType, indent) {
  const lines = [`${indent}enum ${enumType.name} {`];
  for (const value of enumType.value) lines.push(`${indent}  ${value.name} = ${value.number};`);
  if (enumType.reservedRange.length > 0) lines.push(`${indent}  reserved ${ranges(enumType.reservedRange, true)};`);
  if (enumType.reservedName.length > 0) lines.push(`${indent}  reserved ${enumType.reservedName.map(quoted).join(', ')};`);
  lines.push(`${indent}}`);
  return lines;
}

function printMessage(message, proto3, indent) {
  const lines = [`${indent}message ${message.name} {`];
  const inner = `${indent}  `;
  const isOneofMember = (field) => isFieldSet(field, FieldDescriptorProtoSchema.field.oneofIndex) && !field.proto3Optional;
  const printedOneofs = new Set();
  for (const field of message.field) {
    if (!isOneofMember(field)) {
      lines.push(printField(field, proto3, inner, true));
      continue;
    }
    // A oneof is printed whole where its first member stands.
    if (printedOneofs.has(field.oneofIndex)) continue;
    printedOneofs.add(field.oneofIndex);
    lines.push(`${inner}oneof ${message.oneofDecl[field.oneofIndex].name} {`);
    for (const member of message.field.filter((candidate) => isOneofMember(candidate) && candidate.oneofIndex === field.oneofIndex)) {
      lines.push(printField(member, proto3, `${inner}  `, false));
    }
    lines.push(`${inner}}`);
  }
  for (const nested of message.nestedType) {
    if (nested.options?.mapEntry) throw new Error(`${message.name}.${nested.name}: map fields are not supported`);
    lines.push(...printMessage(nested, proto3, inner));
  }
  for (const enumType of message.enumType) lines.push(...printEnum(enumType, inner));
  if (message.extensionRange.length > 0) lines.push(`${inner}extensions ${ranges(message.extensionRange, false)};`);
  if (message.reservedRange.length > 0) lines.push(`${inner}reserved ${ranges(message.reservedRange, false)};`);
  if (message.reservedName.length > 0) lines.push(`${inner}reserved ${message.reservedName.map(quoted).join(', ')};`);
  lines.push(...printExtensions(message.extension, proto3, inner));
  lines.push(`${indent}}`);
  return lines;
}

function printExtensions(extensions, proto3, indent) {
  const lines = [];
  const byExtendee = new Map();
  for (const extension of extensions) byExtendee.set(extension.extendee, [...(byExtendee.get(extension.extendee) ?? []), extension]);
  for (const [extendee, fields] of byExtendee) {
    lines.push(`${indent}extend ${extendee} {`);
    for (const field of fields) lines.push(printField(field, proto3, `${indent}  `, true));
    lines.push(`${indent}}`);
  }
  return lines;
}

/** @param {import('@bufbuild/protobuf/wkt').FileDescriptorProto} file */
export function printProto(file, header) {
  if (file.syntax !== '' && file.syntax !== 'proto2' && file.syntax !== 'proto3') throw new Error(`${file.name}: syntax "${file.syntax}" is not supported`);
  const proto3 = file.syntax === 'proto3';
  const lines = [...header.map((line) => `// ${line}`), `syntax = "${proto3 ? 'proto3' : 'proto2'}";`, '', `package ${file.package};`, ''];
  for (const dependency of file.dependency) lines.push(`import ${quoted(dependency)};`);
  if (file.dependency.length > 0) lines.push('');
  lines.push(...printExtensions(file.extension, proto3, ''));
  for (const message of file.messageType) lines.push(...printMessage(message, proto3, ''));
  for (const enumType of file.enumType) lines.push(...printEnum(enumType, ''));
  return `${lines.join('\n')}\n`;
}
