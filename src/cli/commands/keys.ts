// keys list / rotate / default / retire / revoke: the signing key ring, public parts only.
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

/** A command that changes the ring by one positional argument and prints the ring after. */
function ringChange(
  word: string,
  argument: string,
  summary: string,
  change: (client: Parameters<Parameters<typeof call>[1]>[0], value: string) => Promise<{ keys: Key[] }>,
): Command {
  return {
    words: ['keys', word],
    usage: `tally keys ${word} ${argument}`,
    summary,
    callsTally: true,
    positionals: { min: 1, max: 1, name: argument },
    options: {},
    async run(context) {
      const connection = connect(context.values as ConnectionValues, context.environment);
      const response = await call(connection, (client) => change(client, context.positionals[0]!));
      return keyRows(response.keys, context);
    },
  };
}

export const setDefaultAlgorithm = ringChange('default', 'ALGORITHM', 'make an active algorithm sign the JWTs whose Issue names none', (client, algorithm) =>
  client.setDefaultAlgorithm({ algorithm }),
);

export const retireAlgorithm = ringChange('retire', 'ALGORITHM', 'an algorithm stops signing; its keys verify until its last token has expired', (client, algorithm) =>
  client.retireAlgorithm({ algorithm }),
);

export const revokeKey = ringChange('revoke', 'KID', 'pull a compromised key at once: every JWT it signed is inactive on every replica', (client, kid) =>
  client.revokeKey({ kid }),
);
