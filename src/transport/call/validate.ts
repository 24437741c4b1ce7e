// Enforces the buf.validate rules declared in the proto, once, for both
// servers: every request message is checked before its handler runs (step 4
// of pipeline.ts), and the first violation becomes INVALID_ARGUMENT naming
// the field at fault.
// The rules live in the generated descriptors, so the proto stays the one
// place they are written.
import { getOption, hasOption, isFieldSet, ScalarType, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import { pathToString } from '@bufbuild/protobuf/reflect';
import { createValidator, type Validator, type Violation } from '@bufbuild/protovalidate';
import {
  field as fieldRules,
  FieldRulesSchema,
  message as messageRules,
  oneof as oneofRules,
  RepeatedRulesSchema,
  StringRulesSchema,
  type StringRules,
} from '@bufbuild/protovalidate/gen/buf/validate/validate_pb.js';
import { InvalidArgumentError } from '../../core/errors.js';

/** `audience[3]`, `ttl`, `target`: the field as callers write it in proto snake_case. */
function fieldOf(violation: Violation): string {
  const path = pathToString(violation.field);
  return path === '' ? 'request' : path;
}

export function createRequestValidator(): (schema: DescMessage, message: MessageShape<DescMessage>) => void {
  // failFast: one violation names the field; finding the others costs time a hostile caller chooses.
  const validator: Validator = createValidator({ failFast: true });
  const vouchers = new Map<DescMessage, ((message: MessageShape<DescMessage>) => boolean) | undefined>();
  return (schema, message) => {
    if (!vouchers.has(schema)) vouchers.set(schema, certainlyValid(schema));
    if (vouchers.get(schema)?.(message) === true) return;
    const result = validator.validate(schema, message);
    if (result.kind === 'valid') return;
    if (result.kind === 'invalid') {
      const violation = result.violations[0]!;
      throw new InvalidArgumentError(fieldOf(violation), violation.message);
    }
    // A rule that cannot compile or run is our bug, not the caller's: it answers INTERNAL.
    throw result.error;
  };
}

/**
 * A check that a message certainly passes the proto's rules, made from those
 * same rules, for messages whose only rules are `required` and length bounds
 * on strings and repeated strings (IntrospectRequest); undefined for any
 * other. It may only say yes: a string no longer in UTF-16 units than a
 * bound has no more code points than it either (and one unit means at least
 * one code point). A message it does not vouch for goes to protovalidate,
 * which alone writes verdicts and messages. On the hottest path this spares
 * about 2 µs a call; a property test holds it to protovalidate.
 */
export function certainlyValid(schema: DescMessage): ((message: MessageShape<DescMessage>) => boolean) | undefined {
  if (hasOption(schema, messageRules) || schema.oneofs.some((oneof) => hasOption(oneof, oneofRules))) return undefined;
  const checks: Array<(message: Record<string, unknown>) => boolean> = [];
  for (const field of schema.fields) {
    if (!hasOption(field, fieldRules)) {
      if (field.fieldKind === 'scalar' || (field.fieldKind === 'list' && field.listKind === 'scalar')) continue;
      return undefined;
    }
    const rules = getOption(field, fieldRules);
    // The rules' type is a oneof: its members are fields of their own (string, repeated...).
    if (!onlySet(FieldRulesSchema, rules, ['required', 'string', 'repeated'])) return undefined;
    const name = field.localName;
    if (field.fieldKind === 'scalar' && field.scalar === ScalarType.STRING && rules.type.case === 'string') {
      const fits = stringFits(rules.type.value, rules.required);
      if (fits === undefined) return undefined;
      checks.push((message) => fits(message[name] as string));
    } else if (field.fieldKind === 'list' && field.listKind === 'scalar' && field.scalar === ScalarType.STRING && rules.type.case === 'repeated' && !rules.required) {
      const repeated = rules.type.value;
      if (!onlySet(RepeatedRulesSchema, repeated, ['minItems', 'maxItems', 'items'])) return undefined;
      const items = repeated.items;
      if (items !== undefined && (!onlySet(FieldRulesSchema, items, ['string']) || items.type.case !== 'string')) return undefined;
      const itemFits = items?.type.case === 'string' ? stringFits(items.type.value, false) : () => true;
      if (itemFits === undefined) return undefined;
      const minItems = Number(repeated.minItems ?? 0n);
      const maxItems = repeated.maxItems === undefined ? Infinity : Number(repeated.maxItems);
      checks.push((message) => {
        const list = message[name] as string[];
        return list.length >= minItems && list.length <= maxItems && list.every(itemFits);
      });
    } else {
      return undefined;
    }
  }
  return (message) => checks.every((check) => check(message as unknown as Record<string, unknown>));
}

function stringFits(rules: StringRules, required: boolean): ((value: string) => boolean) | undefined {
  if (!onlySet(StringRulesSchema, rules, ['minLen', 'maxLen'])) return undefined;
  const minimum = Math.max(required ? 1 : 0, Number(rules.minLen ?? 0n));
  const maximum = rules.maxLen === undefined ? Infinity : Number(rules.maxLen);
  // min_len counts code points: one unit is one code point at least, two units may be one.
  if (minimum > 1) return undefined;
  return (value) => value.length >= minimum && value.length <= maximum;
}

function onlySet<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>, allowed: readonly string[]): boolean {
  return schema.fields.every((field) => allowed.includes(field.localName) || !isFieldSet(message, field));
}
