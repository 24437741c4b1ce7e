// keys list, keys rotate: the signing key ring, public parts only.
import { toJson } from '@bufbuild/protobuf';
import type { JsonObject } from '@bufbuild/protobuf';
import { KeySchema, type Key } from '../../client/index.js';
import type { Command, CommandContext } from '../command.js';
import { call, connect, type ConnectionValues } from '../connection.js';

/** One row per key; the public JWK only in JSON, where it can be used. */
function keyRows(keys: Key[], context: CommandContext): unknown {
  const rows = keys.map((key) => toJson(KeySchema, key) as JsonObject);
  if (context.output === 'json') return { keys: rows };
  return rows.map(({ publicJwk: _publicJwk, ...row }) => ({ ...row, state: String(row.state ?? '').replace(/^KEY_STATE_/, '') }));
}

export const listKeys: Command = {
  words: ['keys', 'list'],
  usage: 'tally keys list',
  summary: 'the key ring: kid, algorithm, state, created and retiring times',
  callsTally: true,
  options: {},
  async run(context) {
    const connection = connect(context.values as ConnectionValues, context.environment);
    const response = await call(connection, (client) => client.listKeys({}));
    return keyRows(response.keys, context);
  },
};

export const rotateKeys: Command = {
  words: ['keys', 'rotate'],
  usage: 'tally keys rotate [--algorithm ALG]',
  summary: 'make a new signing key active; older keys verify until they retire',
  callsTally: true,
  options: { algorithm: { type: 'string' } },
  async run(context) {
    const connection = connect(context.values as ConnectionValues, context.environment);
    const algorithm = typeof context.values.algorithm === 'string' ? context.values.algorithm : '';
    // Never retried by the client: a lost answer must not rotate twice.
    const response = await call(connection, (client) => client.rotateKeys({ algorithm }));
    return keyRows(response.keys, context);
  },
};
