// WebSocket transport: GET /ws with subprotocol sori.v1, one JSON text frame
// per message (docs/protocol.md).

import { decodeMessages } from './codec.js';
import { SUBPROTOCOL_MSGPACK, decodeMsgpack, encodeMsgpack } from './msgpack.js';
import { Transport, TransportOpenError, baseURL, statusKind } from './transport.js';

/** The subprotocol every Sori WebSocket speaks. */
export const SUBPROTOCOL = 'sori.v1';

const textDecoder = new TextDecoder();

/**
 * Protocol v1 over a WebSocket. It takes the WebSocket constructor from
 * the context (any implementation of the browser API, such as the `ws`
 * package in Node 20), defaulting to globalThis.WebSocket.
 */
export class WebSocketTransport extends Transport {
  /** @type {string} */
  #url;
  /** @type {import('./transport.js').WebSocketConstructor | undefined} */
  #WebSocket;
  /** @type {import('./transport.js').WebSocketLike | null} */
  #socket = null;
  #closed = false;
  /** @type {((err: Error) => void) | null} rejects a pending open() */
  #abortOpen = null;
  /** The binary codec (sori.v1.msgpack) instead of JSON text frames. */
  #binary = false;

  /** @param {import('./transport.js').TransportContext} context */
  constructor(context) {
    super();
    this.#url = webSocketURL(context.url);
    this.#WebSocket = context.WebSocket ?? globalThis.WebSocket;
    this.#binary = context.codec === 'binary';
  }

  get name() {
    return 'websocket';
  }

  /** @returns {Promise<void>} */
  open() {
    return new Promise((resolve, reject) => {
      const WebSocketImpl = this.#WebSocket;
      if (typeof WebSocketImpl !== 'function') {
        reject(new Error('no WebSocket implementation: pass the WebSocket option (e.g. the ws package in Node 20)'));
        return;
      }
      let socket;
      try {
        socket = new WebSocketImpl(this.#url, this.#binary ? SUBPROTOCOL_MSGPACK : SUBPROTOCOL);
        if (this.#binary) socket.binaryType = 'arraybuffer';
      } catch (err) {
        reject(err);
        return;
      }
      this.#socket = socket;
      let opened = false;
      /** What the error event said, when the implementation says anything (ws does; browsers do not). */
      let failure = '';
      this.#abortOpen = (err) => {
        this.#abortOpen = null;
        reject(err);
      };
      socket.onopen = () => {
        if (this.#closed) return;
        const wanted = this.#binary ? SUBPROTOCOL_MSGPACK : SUBPROTOCOL;
        if (socket.protocol !== wanted) {
          // A server (or proxy) that ignored the subprotocol does not speak Sori.
          this.#detach(socket);
          socket.close(1000);
          reject(new TransportOpenError('not_sori', `${this.#url} did not accept subprotocol ${wanted}: not a Sori endpoint`));
          return;
        }
        opened = true;
        this.#abortOpen = null;
        resolve();
      };
      socket.onmessage = (event) => {
        if (this.#closed) return;
        const { data } = event;
        if (this.#binary && typeof data !== 'string') {
          this.emit('message', decodeMsgpack(new Uint8Array(data))); // messages, already decoded
          return;
        }
        this.emit('message', typeof data === 'string' ? data : textDecoder.decode(data));
      };
      socket.onerror = (event) => {
        // A close event always follows; it carries the code. Node's ws also
        // says why ("Unexpected server response: 404", "connect ECONNREFUSED").
        failure = String(event?.message ?? event?.error?.message ?? '');
      };
      socket.onclose = (event) => {
        this.#detach(socket);
        if (!opened) {
          reject(openFailure(this.#url, event.code, failure));
          return;
        }
        if (this.#closed) return;
        this.#closed = true;
        this.emit('close', { code: event.code || 1006, reason: event.reason || '' });
      };
    });
  }

  /** @param {string} frame */
  send(frame) {
    if (this.#closed || !this.#socket) return;
    try {
      this.#socket.send(this.#binary ? encodeMsgpack(/** @type {any[]} */ (decodeMessages(frame))) : frame);
    } catch {
      // The socket is closing; its close event reports the end.
    }
  }

  close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#abortOpen?.(new Error('transport closed while opening'));
    const socket = this.#socket;
    if (!socket) return;
    this.#detach(socket);
    try {
      socket.close(1000);
    } catch {
      // Already closed.
    }
  }

  /** @param {import('./transport.js').WebSocketLike} socket */
  #detach(socket) {
    socket.onopen = socket.onmessage = socket.onclose = null;
    socket.onerror = () => {};
  }
}

/**
 * The WebSocket endpoint of a server base URL.
 * @param {string} url
 * @returns {string}
 */
export function webSocketURL(url) {
  const base = new URL(baseURL(url));
  base.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:';
  return base.href.replace(/\/+$/, '') + '/ws';
}

/**
 * The error for a WebSocket that closed before it opened. Browsers tell
 * nothing more than the close code (1006), so there it reads as
 * unreachable; the client's HTTP transports then tell a 404 apart.
 * @param {string} url
 * @param {number} code
 * @param {string} failure what the error event said
 * @returns {TransportOpenError}
 */
function openFailure(url, code, failure) {
  const m = /Unexpected server response: (\d+)/.exec(failure);
  if (m) {
    const status = Number(m[1]);
    return new TransportOpenError(statusKind(status), `GET ${url} answered HTTP ${status} instead of a WebSocket upgrade`, { status });
  }
  return new TransportOpenError('unreachable', `WebSocket to ${url} closed before opening (code ${code}${failure ? `: ${failure}` : ''})`);
}
