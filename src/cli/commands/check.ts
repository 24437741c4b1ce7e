// check callers / check settings: what the server would refuse at start-up,
// found before it starts, by the server's own parsers (auth/callers.ts,
// config.ts, transport/telemetry/tracing-settings.ts) so the check and the server cannot disagree.

import { readFileSync } from 'node:fs';
import { ConfigError, loadConfig, SETTINGS } from '../../config.js';
import { watchTlsFiles } from '../../transport/tls/tls-files.js';
import { readTracingSettings } from '../../transport/telemetry/tracing-settings.js';
import type { Command } from '../command.js';
import { CliError } from '../usage-error.js';
import { checkCallersText } from './callers.js';

function readCallersFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new CliError(`${path}: cannot read the callers file: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`);
  }
}

function callerRows(path: string) {
  return checkCallersText(path, readCallersFile(path)).callers.map((caller) => ({ name: caller.name, permissions: [...caller.permissions], audiences: caller.audiences ?? [] }));
}

export const checkCallers: Command = {
  words: ['check', 'callers'],
  usage: 'tally check callers FILE',
  summary: 'check a callers file as the server reads it; list its callers',
  callsTally: false,
  positionals: { min: 1, max: 1, name: 'FILE' },
  options: {},
  async run(context) {
    return callerRows(context.positionals[0]!);
  },
};

export const checkSettings: Command = {
  words: ['check', 'settings'],
  usage: 'tally check settings',
  summary: 'check the TALLY_* settings in the environment (and the callers and TLS files they name, and the OTEL_* tracing variables) without starting the server',
  callsTally: false,
  options: {},
  async run(context) {
    let config: ReturnType<typeof loadConfig>;
    try {
      config = loadConfig(context.environment);
      // The OTEL_* variables of tracing too: a bad one stops the server as a bad TALLY_* setting does.
      readTracingSettings(context.environment);
    } catch (error) {
      if (error instanceof ConfigError) throw new CliError(`invalid settings: ${error.problems.join('; ')}`);
      throw error;
    }
    // The server reads the callers file at start-up too, and refuses to start on a bad one.
    if (config.callersFile !== undefined) {
      try {
        callerRows(config.callersFile);
      } catch (error) {
        throw new CliError(`invalid settings: ${SETTINGS.callersFile.env}: ${(error as Error).message}`);
      }
    }
    // And its TLS files: they must parse and the key must belong to the certificate.
    if (config.tlsCertFile !== undefined && config.tlsKeyFile !== undefined) {
      try {
        const files = { certFile: config.tlsCertFile, keyFile: config.tlsKeyFile, clientCaFile: config.tlsClientCaFile };
        watchTlsFiles({ ...files, pollIntervalMs: 60_000, onReload: () => {}, onError: () => {} }).close();
      } catch (error) {
        throw new CliError(`invalid settings: ${SETTINGS.tlsCertFile.env}, ${SETTINGS.tlsKeyFile.env}, ${SETTINGS.tlsClientCaFile.env}: ${(error as Error).message}`);
      }
    }
    return Object.values(SETTINGS).map((setting) => {
      const given = context.environment[setting.env];
      const set = given !== undefined && given !== '';
      const shown = 'secret' in setting && setting.secret === true ? '(hidden)' : given;
      return { variable: setting.env, value: set ? shown : (setting.default ?? '(unset)'), from: set ? 'environment' : 'default' };
    });
  },
};
