// The real clock and randomness, for production; tests inject their own.
import { randomBytes } from 'node:crypto';
import type { Clock, Randomness } from './ports.js';

export const systemClock: Clock = { now: () => Date.now() };

export const systemRandomness: Randomness = {
  bytes: (length) => new Uint8Array(randomBytes(length)),
};
