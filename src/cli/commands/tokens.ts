// issue, introspect, revoke: the token calls, as an operator types them.
import { toJson } from '@bufbuild/protobuf';
import type { JsonObject } from '@bufbuild/protobuf';
import {
  IntrospectResponseSchema,
  IssueResponseSchema,
  TokenFormat,
  type RevokeRequest,
} from '../../client/index.js';
import { parseDuration } from '../../config.js';
import type { Command, CommandContext } from '../command.js';
import { call, connect, type ConnectionValues } from '../connection.js';
import { usageError } from '../usage-error.js';

const FORMATS: Record<string, TokenFormat> = { opaque: TokenFormat.OPAQUE, jwt: TokenFormat.JWT };

function list(value: unknown): string[] {
  return Array.isArray(value) ? (value as string[]) : [];
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** A token from the positional argument, or standard input for "-" (so it stays out of `ps` and shell history). */
function tokenFrom(given: string | undefined, context: CommandContext, what: string): string {
  const token = (given === '-' ? context.readStdin() : (given ?? '')).trim();
  if (token === '') throw usageError(`${what}: no token given (pass it, or "-" to read it from standard input)`);
  return token;
}

export const issue: Command = {
  words: ['issue'],
  usage: 'tally issue --subject SUBJECT [--client-id ID] [--audience AUD]... [--scope SCOPE]... [--ttl 1h] [--format opaque|jwt] [--algorithm ALG] [--session-id ID] [--claims JSON]',
  summary: 'mint a token (printed once: keep it secret)',
  callsTally: true,
  options: {
    subject: { type: 'string' },
    'client-id': { type: 'string' },
    audience: { type: 'string', multiple: true },
    scope: { type: 'string', multiple: true },
    ttl: { type: 'string' },
    format: { type: 'string' },
    algorithm: { type: 'string' },
    'session-id': { type: 'string' },
    claims: { type: 'string' },
  },
  async run(context) {
    const { values } = context;
    const subject = text(values.subject);
    if (subject === undefined || subject === '') throw usageError('issue: --subject is required');
    const formatName = text(values.format) ?? 'opaque';
    const format = FORMATS[formatName];
    if (format === undefined) throw usageError(`--format: expected opaque or jwt, got ${JSON.stringify(formatName)}`);
    let ttl: { seconds: bigint; nanos: number } | undefined;
    if (values.ttl !== undefined) {
      let milliseconds: number;
      try {
        milliseconds = parseDuration(String(values.ttl));
      } catch (error) {
        throw usageError(`--ttl: ${(error as Error).message}`);
      }
      ttl = { seconds: BigInt(Math.floor(milliseconds / 1000)), nanos: (milliseconds % 1000) * 1_000_000 };
    }
    let claims: JsonObject | undefined;
    if (values.claims !== undefined) {
      try {
        claims = JSON.parse(String(values.claims)) as JsonObject;
      } catch {
        throw usageError('--claims: expected a JSON object, e.g. \'{"tenant":"acme"}\'');
      }
      if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) throw usageError('--claims: expected a JSON object');
    }
    const connection = connect(values as ConnectionValues, context.environment);
    const response = await call(connection, (client) =>
      client.issue({
        subject,
        clientId: text(values['client-id']) ?? '',
        audience: list(values.audience),
        scopes: list(values.scope),
        ttl,
        format,
        algorithm: text(values.algorithm) ?? '',
        sessionId: text(values['session-id']) ?? '',
        claims,
      }),
    );
    return toJson(IssueResponseSchema, response);
  },
};

export const introspect: Command = {
  words: ['introspect'],
  usage: 'tally introspect TOKEN|- [--audience AUD] [--scope SCOPE]...',
  summary: 'say whether a token is active, and its claims',
  callsTally: true,
  positionals: { min: 1, max: 1, name: 'TOKEN' },
  options: {
    audience: { type: 'string' },
    scope: { type: 'string', multiple: true },
  },
  async run(context) {
    const token = tokenFrom(context.positionals[0], context, 'introspect');
    const connection = connect(context.values as ConnectionValues, context.environment);
    const response = await call(connection, (client) =>
      client.introspect({ token, audience: text(context.values.audience) ?? '', requiredScopes: list(context.values.scope) }),
    );
    // An inactive answer is exactly {"active": false}; toJson would leave "active" out.
    return { active: response.active, ...(toJson(IntrospectResponseSchema, response) as JsonObject) };
  },
};

const REVOKE_TARGETS = ['token', 'token-id', 'subject', 'client-id', 'session-id'] as const;
const TARGET_CASE = { token: 'token', 'token-id': 'tokenId', subject: 'subject', 'client-id': 'clientId', 'session-id': 'sessionId' } as const;

export const revoke: Command = {
  words: ['revoke'],
  usage: 'tally revoke (--token TOKEN|- | --token-id ID | --subject SUBJECT | --client-id ID | --session-id ID)',
  summary: 'revoke one token, or every token of a subject, client or session',
  callsTally: true,
  options: Object.fromEntries(REVOKE_TARGETS.map((target) => [target, { type: 'string' }])),
  async run(context) {
    const given = REVOKE_TARGETS.filter((target) => context.values[target] !== undefined);
    if (given.length !== 1) throw usageError(`revoke: give exactly one of ${REVOKE_TARGETS.map((target) => `--${target}`).join(', ')}`);
    const target = given[0]!;
    const raw = String(context.values[target]);
    const value = target === 'token' ? tokenFrom(raw, context, 'revoke --token') : raw.trim();
    if (value === '') throw usageError(`--${target}: must not be empty`);
    const connection = connect(context.values as ConnectionValues, context.environment);
    await call(connection, (client) => client.revoke({ target: { case: TARGET_CASE[target], value } } as Pick<RevokeRequest, 'target'>));
    // The handle, never the token itself.
    return { revoked: true, [TARGET_CASE[target]]: target === 'token' ? '(the token given)' : value };
  },
};
