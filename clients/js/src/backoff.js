// Reconnect delays: exponential backoff with jitter.

/**
 * @typedef {object} ReconnectOptions
 * @property {number} [minDelay=250] milliseconds: the ceiling of the first retry's delay
 * @property {number} [maxDelay=20000] milliseconds: no delay is longer
 * @property {number} [factor=2] how much the ceiling grows per failed attempt
 * @property {number} [jitter=1] fraction of the ceiling drawn at random: 1 is
 *   "full jitter" (a delay anywhere between 0 and the ceiling), 0 none
 * @property {boolean} [enabled=true] false: never reconnect by itself
 */

/** @type {Required<ReconnectOptions>} */
export const defaultReconnect = Object.freeze({
  minDelay: 250,
  maxDelay: 20000,
  factor: 2,
  jitter: 1,
  enabled: true,
});

/**
 * Returns the delay before reconnect attempt number `attempt` (0 for the
 * first). The ceiling grows as minDelay·factor^attempt up to maxDelay; with
 * full jitter the delay is uniform in [0, ceiling], which spreads a crowd of
 * clients that lost the same server over the whole window instead of
 * stampeding it at the same instants.
 * @param {number} attempt
 * @param {Required<ReconnectOptions>} options
 * @param {() => number} [random=Math.random] returns a number in [0, 1)
 * @returns {number} milliseconds
 */
export function backoffDelay(attempt, options, random = Math.random) {
  const { minDelay, maxDelay, factor, jitter } = options;
  const ceiling = Math.min(maxDelay, minDelay * Math.pow(factor, Math.max(0, attempt)));
  const j = Math.min(1, Math.max(0, jitter));
  return ceiling * (1 - j * random());
}
