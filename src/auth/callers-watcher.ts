// Keeps the caller directory in step with the callers file. The file is
// polled rather than watched with inotify, because configuration mounts
// (Kubernetes ConfigMaps and Secrets) replace it through a symlink swap that
// inotify watchers on the old file never see. A file that stops parsing
// leaves the last good directory in force, and says why.
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { NO_CALLERS, parseCallers, type CallerDirectory } from './callers.js';

export interface CallersWatcherOptions {
  /** Unset: no callers file, so no callers (protected mode decides). */
  path?: string;
  pollIntervalMs: number;
  onReload: (directory: CallerDirectory) => void;
  onError: (error: Error) => void;
}

export interface CallersWatcher {
  current(): CallerDirectory;
  close(): void;
}

/** Reads the file once (throwing if it is bad, so start-up fails) and then follows it. */
export function watchCallers(options: CallersWatcherOptions): CallersWatcher {
  const { path } = options;
  if (path === undefined) return { current: () => NO_CALLERS, close: () => {} };
  let directory = parseCallers(readFileSync(path, 'utf8'));
  const listener = () => {
    try {
      directory = parseCallers(readFileSync(path, 'utf8'));
      options.onReload(directory);
    } catch (error) {
      options.onError(error as Error);
    }
  };
  watchFile(path, { interval: options.pollIntervalMs, persistent: false }, listener);
  return {
    current: () => directory,
    close: () => unwatchFile(path, listener),
  };
}
