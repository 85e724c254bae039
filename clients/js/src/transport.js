// The seam between the protocol client and the wire. A transport moves text
// frames of protocol v1 JSON (docs/protocol.md) and knows nothing of
// commands, subscriptions or reconnects; the client owns all of that.

import { Emitter } from './emitter.js';

/**
 * What a transport reports when its connection ends without the client
 * asking: a close code from docs/protocol.md ("Close codes"), and, when the
 * server said so explicitly, whether to reconnect.
 * @typedef {object} CloseInfo
 * @property {number} code
 * @property {string} reason
 * @property {boolean} [reconnect] the server's explicit hint (a disconnect push); absent: decided by code
 */

/**
 * What the WebSocket transport uses of a WebSocket: the browser API's shape,
 * which the `ws` package's class has too.
 * @typedef {object} WebSocketLike
 * @property {string} protocol
 * @property {((event: any) => void) | null} onopen
 * @property {((event: any) => void) | null} onmessage
 * @property {((event: any) => void) | null} onerror
 * @property {((event: any) => void) | null} onclose
 * @property {(data: string | Uint8Array) => void} send
 * @property {(code?: number, reason?: string) => void} close
 * @property {string} [binaryType] set to 'arraybuffer' for the binary codec
 */

/**
 * @typedef {new (url: string, protocols?: string | string[]) => WebSocketLike} WebSocketConstructor
 */

/**
 * Everything a transport may need to reach the server.
 * @typedef {object} TransportContext
 * @property {string} url the server's base URL, http(s)://host[:port][/prefix]
 * @property {WebSocketConstructor} [WebSocket] WebSocket constructor (browser API shape)
 * @property {typeof globalThis.fetch} [fetch] fetch implementation for the HTTP transports
 * @property {'json'|'binary'} [codec] 'binary': the WebSocket transport speaks sori.v1.msgpack (HTTP transports stay JSON)
 */

/**
 * A transport connection. Implementations extend this class (or provide the
 * same members) and emit two events:
 *  - `'message'` (text: string): one frame from the server, holding one or
 *    more JSON messages;
 *  - `'close'` (info: CloseInfo): the connection ended by itself, at most
 *    once, and only after open() resolved.
 *
 * One object serves one connection: the client creates a fresh transport
 * for every connection attempt. Methods are called from one thread (the
 * event loop); they never throw for network conditions.
 *
 * @abstract
 * @extends {Emitter<{message: [string], close: [CloseInfo]}>}
 */
export class Transport extends Emitter {
  /** A short name for logs and the client's `transport` property. */
  get name() {
    return 'abstract';
  }

  /**
   * Opens the connection. Resolves when frames can be sent; rejects when it
   * cannot open, which makes the client try its next transport.
   * @returns {Promise<void>}
   */
  open() {
    return Promise.reject(new Error('Transport.open is not implemented'));
  }

  /**
   * Sends one frame (one or more commands as JSON lines). Frames reach the
   * server in the order they were sent. After the connection ended, send
   * does nothing: the client learns of the end through 'close'.
   * @param {string} frame
   */
  // eslint-disable-next-line no-unused-vars
  send(frame) {
    throw new Error('Transport.send is not implemented');
  }

  /**
   * Ends the connection at the client's request. No 'close' event follows.
   */
  close() {}
}

/**
 * Why a transport could not open, for the client to tell its caller whether
 * the server was out of reach (refused, unreachable, a gateway error: worth
 * retrying) or answered as something that is not a Sori endpoint (a 404, a
 * page without the subprotocol: retrying the same URL cannot help).
 */
export class TransportOpenError extends Error {
  /**
   * @param {'unreachable'|'not_sori'} kind
   * @param {string} message
   * @param {{cause?: unknown, status?: number}} [options] status: the HTTP status the server answered, when known
   */
  constructor(kind, message, options = {}) {
    super(message, { cause: options.cause });
    this.name = 'TransportOpenError';
    /** @type {'unreachable'|'not_sori'} */
    this.kind = kind;
    /** @type {number|undefined} */
    this.status = options.status;
  }
}

/**
 * The failure kind of an HTTP status answered where a Sori endpoint should
 * be: a gateway or server error may pass, any other status means the URL is
 * not a Sori endpoint.
 * @param {number} status
 * @returns {'unreachable'|'not_sori'}
 */
export function statusKind(status) {
  return status >= 500 ? 'unreachable' : 'not_sori';
}

/**
 * Turns the client's `url` option into the server's base HTTP URL. A
 * WebSocket URL (`ws://host/ws`) is accepted as well: its scheme is mapped
 * and the `/ws` endpoint dropped.
 * @param {string} url
 * @returns {string} base URL without a trailing slash
 */
export function baseURL(url) {
  const u = new URL(url, globalThis.location?.href);
  if (u.protocol === 'ws:') u.protocol = 'http:';
  if (u.protocol === 'wss:') u.protocol = 'https:';
  let path = u.pathname.replace(/\/+$/, '');
  if (path.endsWith('/ws')) path = path.slice(0, -3);
  return u.origin + path;
}
