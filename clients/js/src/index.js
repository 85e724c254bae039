// @sori/client: the JavaScript client of Sori (docs/protocol.md). Plain ES
// modules without dependencies, for browsers and Node 20+.

export { SoriClient, VERSION } from './client.js';
export { Subscription } from './subscription.js';
export { SoriError, ServerErrorCode, ClientErrorCode, CloseCode, shouldReconnect } from './errors.js';
export { Transport, TransportOpenError } from './transport.js';
export { WebSocketTransport, SUBPROTOCOL } from './websocket.js';
export { HttpSessionTransport, SSETransport, LongPollTransport } from './http.js';
export { backoffDelay } from './backoff.js';
export { Emitter } from './emitter.js';
export { Outbox, newClientId } from './outbox.js';
