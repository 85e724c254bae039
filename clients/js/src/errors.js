// Error and close codes of Sori protocol v1 (docs/protocol.md, "Errors" and
// "Close codes"), and the one error type the SDK rejects with.

/**
 * Numbered error codes the server answers commands with.
 * @readonly
 * @enum {number}
 */
export const ServerErrorCode = Object.freeze({
  INTERNAL: 100,
  BAD_REQUEST: 101,
  UNKNOWN_OP: 102,
  NOT_CONNECTED: 103,
  PERMISSION_DENIED: 104,
  ALREADY_CONNECTED: 105,
  ALREADY_SUBSCRIBED: 106,
  NOT_SUBSCRIBED: 107,
  TOO_MANY_SUBSCRIPTIONS: 108,
  RATE_LIMITED: 109,
  MESSAGE_TOO_LARGE: 110,
  INVALID_CHANNEL: 111,
  TOKEN_EXPIRED: 112,
  INVALID_TOKEN: 113,
  BAD_DATA: 114,
  UNAVAILABLE: 115,
  UNKNOWN_METHOD: 116,
  NOT_FOUND: 117,
  CONFLICT: 118,
});

/**
 * Codes of failures the client detects itself. They are strings, so they
 * never collide with the server's numbers.
 * @readonly
 * @enum {string}
 */
export const ClientErrorCode = Object.freeze({
  /** No reply arrived within the request timeout. */
  TIMEOUT: 'timeout',
  /** The connection ended (or the client was disconnected) before the reply. */
  DISCONNECTED: 'disconnected',
  /** The subscription was unsubscribed before the request could be sent. */
  UNSUBSCRIBED: 'unsubscribed',
  /** Every transport failed to open (not reported since 'unreachable' and 'not_sori' tell why). */
  TRANSPORT: 'transport',
  /**
   * No transport reached the server: connection refused, host unknown or
   * unreachable, a gateway error. The client goes on retrying.
   */
  UNREACHABLE: 'unreachable',
  /**
   * The server answered, but not as a Sori endpoint (HTTP 404, no `sori.v1`
   * subprotocol, no session): most likely a wrong URL. Final on the first
   * connection after connect(); retried on reconnects.
   */
  NOT_SORI: 'not_sori',
  /** The server sent something the client cannot understand. */
  PROTOCOL: 'protocol',
});

/**
 * Close codes with a meaning for the client (RFC 6455 §7.4 and Sori's own).
 * @readonly
 * @enum {number}
 */
export const CloseCode = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  UNSUPPORTED_DATA: 1003,
  ABNORMAL: 1006,
  INVALID_PAYLOAD: 1007,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  SLOW_CONSUMER: 4001,
  HEARTBEAT_TIMEOUT: 4002,
  TOKEN_EXPIRED: 4003,
  FORCE_RECONNECT: 4004,
  BAD_REQUEST: 4500,
  UNAUTHORIZED: 4501,
  KICKED: 4502,
  CONNECTION_LIMIT: 4503,
  CONNECT_TIMEOUT: 4504,
  RATE_LIMIT: 4505,
});

/** WebSocket-level codes that mean "the client or its data is at fault": retrying the same thing cannot help. */
const fatalWebSocketCodes = new Set([1000, 1002, 1003, 1007, 1008, 1009, 1010]);

/**
 * Reports whether a connection closed with `code` should be reopened.
 * 4000–4499 ask for a reconnect, 4500–4999 ask not to reconnect without a
 * change; WebSocket-level codes follow RFC 6455 §7.4: protocol, data and
 * policy errors are final, going away / abnormal / server errors are not.
 * Codes the protocol does not define (1005, 1012, 1013, …) are retried, since
 * giving up silently would be worse than a backed-off retry.
 * @param {number} code
 * @returns {boolean}
 */
export function shouldReconnect(code) {
  if (code >= 4000 && code <= 4499) return true;
  if (code >= 4500 && code <= 4999) return false;
  return !fatalWebSocketCodes.has(code);
}

/**
 * The error every SDK promise rejects with. `code` is the server's number
 * (see {@link ServerErrorCode}) when the server refused the command, or one
 * of {@link ClientErrorCode} when the client gave up by itself.
 */
export class SoriError extends Error {
  /**
   * @param {number|string} code
   * @param {string} message
   * @param {{cause?: unknown}} [options]
   */
  constructor(code, message, options) {
    super(message, options);
    this.name = 'SoriError';
    /** @type {number|string} */
    this.code = code;
  }

  /** True when the server refused the command (a numbered code). */
  get fromServer() {
    return typeof this.code === 'number';
  }

  /**
   * Builds a SoriError from a reply's `error` member.
   * @param {{code?: number, message?: string}} error
   * @returns {SoriError}
   */
  static fromReply(error) {
    const code = typeof error?.code === 'number' ? error.code : ServerErrorCode.INTERNAL;
    return new SoriError(code, error?.message || `server error ${code}`);
  }
}
