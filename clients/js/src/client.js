// SoriClient: one logical connection to a Sori server that survives
// transport failures, with requests, subscriptions and token refresh.

import { backoffDelay, defaultReconnect } from './backoff.js';
import { decodeMessages, packFrames } from './codec.js';
import { Emitter } from './emitter.js';
import { ClientErrorCode, CloseCode, ServerErrorCode, SoriError, shouldReconnect } from './errors.js';
import { LongPollTransport, SSETransport } from './http.js';
import { TransportOpenError } from './transport.js';
import { Subscription, historyRequest } from './subscription.js';
import { WebSocketTransport } from './websocket.js';

/** The SDK version, sent in connect as the client name. */
export const VERSION = '0.1.0';

/**
 * @typedef {import('./transport.js').Transport} Transport
 * @typedef {import('./transport.js').TransportContext} TransportContext
 * @typedef {import('./transport.js').CloseInfo} CloseInfo
 * @typedef {import('./subscription.js').Position} Position
 * @typedef {import('./subscription.js').Publication} Publication
 * @typedef {import('./subscription.js').ClientInfo} ClientInfo
 * @typedef {import('./subscription.js').SubscriptionHandlers} SubscriptionHandlers
 * @typedef {import('./backoff.js').ReconnectOptions} ReconnectOptions
 */

/**
 * A transport by name, or a function that creates one per connection attempt.
 * @typedef {'websocket'|'sse'|'longpoll'|((context: TransportContext) => Transport)} TransportChoice
 */

/**
 * @typedef {object} SoriClientOptions
 * @property {string} [url] the server's base URL (`http://host:7700`), or its WebSocket
 *   endpoint (`ws://host:7700/ws`); default in a browser: the page's origin
 * @property {string} [token] connection token (JWT); omit both token and getToken for anonymous connections
 * @property {() => Promise<string>} [getToken] returns a fresh token: called to connect when no
 *   valid token is at hand, before the current one expires (to refresh it in place), and after the
 *   server reported it expired
 * @property {import('./transport.js').WebSocketConstructor} [WebSocket] WebSocket constructor; default
 *   globalThis.WebSocket (Node 20 has none: pass the `ws` package's)
 * @property {typeof globalThis.fetch} [fetch] fetch for the HTTP transports; default globalThis.fetch
 * @property {TransportChoice[]} [transports] tried in order on every connection attempt until one
 *   opens; default ['websocket', 'sse', 'longpoll']
 * @property {'json'|'binary'} [codec='json'] 'binary': WebSocket frames in the binary codec
 *   (sori.v1.msgpack, docs/protocol.md); the HTTP transports always speak JSON
 * @property {number} [requestTimeout=10000] milliseconds a request (or opening a transport) may take
 * @property {number} [connectTimeout=0] milliseconds connect() waits for the first connection before it
 *   rejects (code 'timeout', the last attempt's error as `cause`) and the client stops; 0: keep trying
 * @property {ReconnectOptions} [reconnect] backoff between reconnect attempts
 * @property {number} [maxFrameSize=16384] characters per outbound frame when commands are batched
 * @property {string} [name] client name sent in connect, for server logs
 */

/**
 * The connect reply.
 * @typedef {object} ConnectInfo
 * @property {string} client the connection id
 * @property {string} user the user id ('' when anonymous)
 * @property {string} version the server version
 * @property {number} expiresIn seconds until the token expires (0: no expiry)
 * @property {number} ping the server's heartbeat interval in seconds
 * @property {string} transport the name of the transport in use
 */

/**
 * @typedef {'connecting'|'connected'|'reconnecting'|'disconnected'} ConnectionState
 */

/**
 * @typedef {object} StateInfo
 * @property {ConnectionState} previous
 * @property {number} [code] close code that caused 'reconnecting' or 'disconnected'
 * @property {string} [reason]
 * @property {number} [delay] milliseconds until the next attempt ('reconnecting' only)
 */

/**
 * @typedef {object} DisconnectedEvent
 * @property {number} code close code (1000 after disconnect())
 * @property {string} reason
 * @property {SoriError} [error] why: the server's error when connect was refused, 'not_sori' or 'timeout'
 */

/**
 * @typedef {object} ClientEvents
 * @property {[ConnectionState, StateInfo]} state
 * @property {[ConnectInfo]} connected
 * @property {[DisconnectedEvent]} disconnected
 * @property {[Error]} error non-fatal problems: a failed connection attempt (a SoriError with code
 *   'unreachable' or 'not_sori', the transports' errors as `cause`), a failed token refresh, an unparseable frame, …
 */

/**
 * One entry per request until its reply.
 * @typedef {object} PendingRequest
 * @property {Record<string, any>} command without id
 * @property {(result: any) => void} resolve
 * @property {(err: SoriError) => void} reject
 * @property {ReturnType<typeof setTimeout>} timer
 * @property {number} id 0 until sent
 */

/** Milliseconds of the token's life left when a refresh starts, at most. */
const maxRefreshLead = 30_000;
/** A known token with less life than this (ms) is not reused for a reconnect. */
const minTokenLife = 1_000;

/**
 * A client for one Sori server.
 *
 * It keeps one connection open through whichever transport works, reconnects
 * by itself with exponential backoff and jitter when the connection drops
 * (unless the close code says not to), resumes every subscription from its
 * last offset, refreshes the token before it expires, and reports its state
 * through 'state' events: connecting → connected → reconnecting → connected
 * … → disconnected.
 *
 * Requests (publish, history, presence, rpc, ping) made while connecting or
 * reconnecting wait for the connection, within the request timeout. A request
 * whose connection drops before the reply is rejected with code
 * 'disconnected': the server may or may not have executed it.
 *
 * All methods are meant for one event loop (browser tab, Node process); the
 * client holds no locks and never blocks.
 *
 * @extends {Emitter<ClientEvents>}
 */
export class SoriClient extends Emitter {
  /** @type {string} */
  #url;
  /** @type {string|undefined} */
  #token;
  /** @type {(() => Promise<string>)|undefined} */
  #getToken;
  /** Milliseconds since the Unix epoch when #token expires; 0 when unknown or never. */
  #tokenExpiresAt = 0;
  #tokenStale = false;
  /** @type {TransportContext} */
  #context;
  /** @type {Array<(context: TransportContext) => Transport>} */
  #transportFactories;
  #requestTimeout;
  #connectTimeout;
  /** @type {ReturnType<typeof setTimeout>|undefined} */
  #connectTimer;
  /** Whether this run (since connect()) has been connected: a wrong URL is final only before. */
  #connectedInRun = false;
  /** @type {SoriError|null} the last failed attempt's error, for the connect timeout's cause */
  #lastFailure = null;
  /** @type {Required<ReconnectOptions>} */
  #reconnect;
  #maxFrameSize;
  #name;

  /** @type {ConnectionState} */
  #state = 'disconnected';
  /** @type {Transport|null} the transport of the current connection attempt or connection */
  #transport = null;
  /** @type {ConnectInfo|null} */
  #info = null;
  /** Failed attempts since the last successful connect. */
  #attempt = 0;
  /** Increments on every connect() and disconnect(): work of an older run stops. */
  #run = 0;
  #nextId = 0;
  /** @type {Map<number, PendingRequest>} sent, waiting for the reply */
  #pending = new Map();
  /** @type {PendingRequest[]} waiting for a connection */
  #waiting = [];
  /** @type {string[]} encoded commands for the next frame */
  #outgoing = [];
  #flushScheduled = false;
  /** @type {Map<string, Subscription>} */
  #subs = new Map();
  /** @type {ReturnType<typeof setTimeout>|undefined} */
  #reconnectTimer;
  /** @type {ReturnType<typeof setTimeout>|undefined} */
  #refreshTimer;
  /** @type {ReturnType<typeof setInterval>|undefined} */
  #heartbeatTimer;
  /** @type {Array<{resolve: (info: ConnectInfo) => void, reject: (err: SoriError) => void}>} */
  #connectWaiters = [];

  /** @param {SoriClientOptions} [options] */
  constructor(options = {}) {
    super();
    const url = options.url ?? globalThis.location?.origin;
    if (!url) throw new TypeError('SoriClient: the url option is required outside a browser');
    this.#url = url;
    this.#token = options.token;
    this.#getToken = options.getToken;
    if (options.codec !== undefined && options.codec !== 'json' && options.codec !== 'binary') {
      throw new TypeError(`unknown codec ${JSON.stringify(options.codec)}: use json or binary`);
    }
    this.#context = { url, WebSocket: options.WebSocket, fetch: options.fetch, codec: options.codec ?? 'json' };
    this.#transportFactories = (options.transports ?? ['websocket', 'sse', 'longpoll']).map(transportFactory);
    if (this.#transportFactories.length === 0) throw new TypeError('SoriClient: transports must not be empty');
    this.#requestTimeout = options.requestTimeout ?? 10_000;
    this.#connectTimeout = options.connectTimeout ?? 0;
    this.#reconnect = { ...defaultReconnect, ...options.reconnect };
    this.#maxFrameSize = options.maxFrameSize ?? 16_384;
    this.#name = options.name ?? `sori-js/${VERSION}`;
  }

  /** The connection state. @returns {ConnectionState} */
  get state() {
    return this.#state;
  }

  /** The current connection's connect reply, or null while not connected. @returns {ConnectInfo|null} */
  get connection() {
    return this.#state === 'connected' ? this.#info : null;
  }

  /** The name of the transport in use, or null while not connected. @returns {string|null} */
  get transport() {
    return this.#state === 'connected' ? (this.#transport?.name ?? null) : null;
  }

  /**
   * Starts connecting (and keeps reconnecting after failures until
   * disconnect() or a close code that forbids it). Resolves on the next
   * successful connect; rejects when the client ends up 'disconnected' first:
   * a refused token (the SoriError carries the server's code), a URL that is
   * not a Sori endpoint ('not_sori'), or no connection within connectTimeout
   * ('timeout'). Each failed attempt also emits 'error' with why.
   * @returns {Promise<ConnectInfo>}
   */
  connect() {
    const promise = new Promise((resolve, reject) => {
      if (this.#state === 'connected' && this.#info) resolve(this.#info);
      else this.#connectWaiters.push({ resolve, reject });
    });
    if (this.#state === 'disconnected') {
      this.#run++;
      this.#attempt = 0;
      this.#connectedInRun = false;
      this.#lastFailure = null;
      this.#setState('connecting', {});
      if (this.#connectTimeout > 0) {
        const run = this.#run;
        this.#connectTimer = setTimeout(() => {
          if (run !== this.#run || this.#connectedInRun) return;
          const last = this.#lastFailure;
          const error = new SoriError(
            ClientErrorCode.TIMEOUT,
            `no connection within ${this.#connectTimeout} ms${last ? `: ${last.message}` : ''}`,
            last ? { cause: last } : undefined,
          );
          this.#run++;
          this.#stopConnection();
          this.#finish({ code: CloseCode.ABNORMAL, reason: error.message, error });
        }, this.#connectTimeout);
      }
      void this.#establish(this.#run);
    }
    return /** @type {Promise<ConnectInfo>} */ (promise);
  }

  /**
   * Closes the connection and stops reconnecting. Pending and waiting
   * requests are rejected with code 'disconnected'. Subscriptions stay
   * registered with their positions: a later connect() resumes them.
   */
  disconnect() {
    if (this.#state === 'disconnected') return;
    this.#run++;
    this.#stopConnection();
    this.#finish({ code: CloseCode.NORMAL, reason: 'disconnect called' });
  }

  /**
   * Subscribes to a channel. The subscription is live until unsubscribe()
   * (or the server ends it), across reconnects.
   * @param {string} channel
   * @param {SubscriptionHandlers} [handlers]
   * @returns {Subscription}
   * @throws {SoriError} code 106 when the channel already has a subscription
   */
  subscribe(channel, handlers) {
    if (this.#subs.has(channel)) {
      throw new SoriError(ServerErrorCode.ALREADY_SUBSCRIBED, `already subscribed to ${channel}: use getSubscription`);
    }
    const sub = new Subscription(this.#subscriptionHost, channel, handlers);
    this.#subs.set(channel, sub);
    if (this.#state === 'connected') sub._subscribe();
    return sub;
  }

  /**
   * The active subscription to a channel, if any.
   * @param {string} channel
   * @returns {Subscription|undefined}
   */
  getSubscription(channel) {
    return this.#subs.get(channel);
  }

  /**
   * Publishes data to a channel (subscribed or not, as the namespace allows).
   * @param {string} channel
   * @param {any} data any JSON value
   * @returns {Promise<Position>}
   */
  publish(channel, data) {
    return this.#request({ op: 'publish', channel, data });
  }

  /**
   * Reads a channel's history; see Subscription.history.
   * @param {string} channel
   * @param {{limit?: number, since?: Position}} [options]
   * @returns {Promise<{epoch: string, offset: number, publications: Publication[]}>}
   */
  history(channel, options) {
    return historyRequest(this.#subscriptionHost, channel, options);
  }

  /**
   * Lists the connections in a channel's presence.
   * @param {string} channel
   * @returns {Promise<{clients: ClientInfo[]}>}
   */
  presence(channel) {
    return this.#request({ op: 'presence', channel });
  }

  /**
   * Calls a server module's method (chat actions, call signaling).
   * @param {string} method
   * @param {any} [data]
   * @returns {Promise<any>} the method's result
   */
  rpc(method, data) {
    /** @type {Record<string, any>} */
    const command = { op: 'rpc', method };
    if (data !== undefined) command.data = data;
    return this.#request(command);
  }

  /**
   * An application-level round trip to the server.
   * @returns {Promise<void>}
   */
  async ping() {
    await this.#request({ op: 'ping' });
  }

  /**
   * Fetches a fresh token with getToken and hands it to the server now,
   * without reconnecting. The client also does this by itself before the
   * token expires.
   * @returns {Promise<void>}
   */
  async refreshToken() {
    if (!this.#getToken) throw new TypeError('refreshToken needs the getToken option');
    if (this.#state !== 'connected') throw new SoriError(ClientErrorCode.DISCONNECTED, 'refreshToken needs a connection');
    const token = await this.#fetchToken();
    const result = await this.#request({ op: 'refresh', token }, { immediate: true });
    this.#tokenAccepted(result.expires_in);
  }

  // ---- connection lifecycle -------------------------------------------------

  /**
   * One connection attempt: token, transport, connect command.
   * @param {number} run
   */
  async #establish(run) {
    let token;
    try {
      token = await this.#tokenForConnect();
    } catch (err) {
      if (run !== this.#run) return;
      this.emit('error', asError(err, 'getToken failed'));
      this.#lost({ code: CloseCode.ABNORMAL, reason: 'getToken failed' });
      return;
    }
    if (run !== this.#run) return;

    /** @type {unknown[]} */
    const failures = [];
    const transport = await this.#openTransport(run, failures);
    if (run !== this.#run) {
      transport?.close();
      return;
    }
    if (!transport) {
      const error = attemptError(this.#url, failures);
      this.#lastFailure = error;
      this.emit('error', error);
      if (error.code === ClientErrorCode.NOT_SORI && !this.#connectedInRun) {
        // The server answered, and not as Sori: the URL is wrong, and trying
        // it again cannot help. (After a first success it may be a proxy
        // mid-deploy, so reconnects keep trying.)
        this.#run++;
        this.#finish({ code: CloseCode.PROTOCOL_ERROR, reason: error.message, error });
        return;
      }
      this.#lost({ code: CloseCode.ABNORMAL, reason: error.message });
      return;
    }
    if (transport !== this.#transport) return; // it closed right after opening: #lost took over

    /** @type {Record<string, any>} */
    const command = { op: 'connect', client: this.#name };
    if (token) command.token = token;
    let result;
    try {
      result = await this.#request(command, { immediate: true });
    } catch (err) {
      if (transport !== this.#transport) return; // the close is handled already
      const e = /** @type {SoriError} */ (err);
      if (e.code === ServerErrorCode.TOKEN_EXPIRED) {
        this.#tokenStale = true;
        this.#lost({ code: CloseCode.TOKEN_EXPIRED, reason: e.message });
      } else if (e.code === ServerErrorCode.INVALID_TOKEN) {
        this.#lost({ code: CloseCode.UNAUTHORIZED, reason: e.message, error: e });
      } else if (e.code === ClientErrorCode.TIMEOUT) {
        this.#lost({ code: CloseCode.HEARTBEAT_TIMEOUT, reason: 'no reply to connect' });
      } else {
        this.#lost({ code: 4000, reason: `connect failed: ${e.message}`, reconnect: true });
      }
      return;
    }
    if (transport !== this.#transport) return;
    this.#connected(result, transport);
  }

  /**
   * Tries the transports in order and returns the first that opens.
   * @param {number} run
   * @param {unknown[]} failures receives each failed transport's error
   * @returns {Promise<Transport|null>}
   */
  async #openTransport(run, failures) {
    for (const create of this.#transportFactories) {
      /** @type {Transport|undefined} */
      let transport;
      try {
        transport = create(this.#context);
        // Listen (and become the current transport) before open() resolves,
        // so no event can slip between open() and this function's caller;
        // disconnect() meanwhile closes it, which aborts the opening.
        this.#listen(transport);
        this.#transport = transport;
        await withTimeout(transport.open(), this.#requestTimeout, 'opening the transport timed out');
        return transport;
      } catch (err) {
        failures.push(err);
        if (transport && this.#transport === transport) this.#transport = null;
        transport?.close();
        if (run !== this.#run) return null;
      }
    }
    return null;
  }

  /**
   * Routes a transport's events to the client while it is the current one.
   * @param {Transport} transport
   */
  #listen(transport) {
    transport.on('message', (text) => {
      if (transport === this.#transport) this.#receive(text);
    });
    transport.on('close', (info) => {
      if (transport === this.#transport) this.#lost(info);
    });
  }

  /**
   * @param {Record<string, any>} result connect reply
   * @param {Transport} transport
   */
  #connected(result, transport) {
    this.#attempt = 0;
    this.#connectedInRun = true;
    this.#lastFailure = null;
    clearTimeout(this.#connectTimer);
    this.#info = {
      client: result.client ?? '',
      user: result.user ?? '',
      version: result.version ?? '',
      expiresIn: result.expires_in ?? 0,
      ping: result.ping ?? 0,
      transport: transport.name,
    };
    this.#tokenAccepted(result.expires_in);
    this.#startHeartbeat(this.#info.ping);
    // Resubscribe first, then the requests that waited: one frame for all.
    for (const sub of this.#subs.values()) sub._subscribe();
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const entry of waiting) this.#send(entry);
    this.#setState('connected', {});
    const info = this.#info;
    this.emit('connected', info);
    const waiters = this.#connectWaiters;
    this.#connectWaiters = [];
    for (const w of waiters) w.resolve(info);
  }

  /**
   * The connection (or attempt) ended without disconnect(): reconnect, or
   * give up when the close code says so.
   * @param {CloseInfo & {error?: SoriError}} info
   */
  #lost(info) {
    this.#stopConnection();
    let again = info.reconnect ?? shouldReconnect(info.code);
    if (info.code === CloseCode.UNAUTHORIZED) {
      // The server refused this token, or revoked the credentials it came
      // from (a password change): it is never sent again. The close is
      // final; a later connect() asks getToken for a fresh one, which is how
      // an application that still holds a login (a new session after its
      // own password change) gets back online.
      this.#tokenStale = true;
    }
    if (info.code === CloseCode.TOKEN_EXPIRED) {
      this.#tokenStale = true;
      again = Boolean(this.#getToken); // a static token cannot get any fresher
    }
    if (!again || !this.#reconnect.enabled) {
      this.#run++;
      this.#finish(info);
      return;
    }
    const delay = backoffDelay(this.#attempt++, this.#reconnect);
    const run = this.#run;
    this.#setState('reconnecting', { code: info.code, reason: info.reason, delay });
    this.#reconnectTimer = setTimeout(() => {
      if (run === this.#run) void this.#establish(run);
    }, delay);
  }

  /**
   * Ends the current connection's resources: transport, timers, sent
   * requests. Subscriptions wait for the next connection.
   */
  #stopConnection() {
    clearTimeout(this.#reconnectTimer);
    clearTimeout(this.#refreshTimer);
    clearInterval(this.#heartbeatTimer);
    const transport = this.#transport;
    this.#transport = null;
    this.#info = null;
    transport?.close();
    this.#outgoing = [];
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const entry of pending) {
      clearTimeout(entry.timer);
      entry.reject(
        new SoriError(ClientErrorCode.DISCONNECTED, `connection lost before the reply to ${entry.command.op}: it may or may not have been executed`),
      );
    }
    for (const sub of this.#subs.values()) sub._connectionLost();
  }

  /**
   * Enters 'disconnected' for good (until connect()).
   * @param {CloseInfo & {error?: SoriError}} info
   */
  #finish(info) {
    clearTimeout(this.#connectTimer);
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const entry of waiting) {
      clearTimeout(entry.timer);
      entry.reject(new SoriError(ClientErrorCode.DISCONNECTED, `client disconnected (${info.code}) before ${entry.command.op} could be sent`));
    }
    this.#setState('disconnected', { code: info.code, reason: info.reason });
    /** @type {DisconnectedEvent} */
    const event = { code: info.code, reason: info.reason };
    if (info.error) event.error = info.error;
    this.emit('disconnected', event);
    const waiters = this.#connectWaiters;
    this.#connectWaiters = [];
    const err = info.error ?? new SoriError(ClientErrorCode.DISCONNECTED, `disconnected (${info.code}): ${info.reason}`);
    for (const w of waiters) w.reject(err);
  }

  /**
   * @param {ConnectionState} state
   * @param {Omit<StateInfo, 'previous'>} info
   */
  #setState(state, info) {
    const previous = this.#state;
    if (previous === state && state !== 'reconnecting') return;
    this.#state = state;
    this.emit('state', state, { previous, ...info });
  }

  // ---- tokens and heartbeats ------------------------------------------------

  /** @returns {Promise<string|undefined>} */
  async #tokenForConnect() {
    // A token whose expiry is unknown (never used yet) counts as fresh; a
    // used one must have a little life left to be worth sending again.
    const fresh =
      this.#token !== undefined &&
      !this.#tokenStale &&
      (this.#tokenExpiresAt === 0 || Date.now() < this.#tokenExpiresAt - minTokenLife);
    if (fresh || !this.#getToken) return this.#token;
    return this.#fetchToken();
  }

  /** @returns {Promise<string>} */
  async #fetchToken() {
    const getToken = /** @type {() => Promise<string>} */ (this.#getToken);
    const token = await getToken();
    if (typeof token !== 'string' || token === '') throw new TypeError('getToken must resolve to a non-empty string');
    this.#token = token;
    this.#tokenStale = false;
    this.#tokenExpiresAt = 0;
    return token;
  }

  /**
   * The server accepted the current token: plan its refresh.
   * @param {number|undefined} expiresIn seconds
   */
  #tokenAccepted(expiresIn) {
    clearTimeout(this.#refreshTimer);
    if (!expiresIn || expiresIn <= 0) {
      this.#tokenExpiresAt = 0;
      return;
    }
    const lifetime = expiresIn * 1000;
    this.#tokenExpiresAt = Date.now() + lifetime;
    if (this.#getToken) this.#scheduleRefresh(lifetime - refreshLead(lifetime));
  }

  /** @param {number} delay */
  #scheduleRefresh(delay) {
    clearTimeout(this.#refreshTimer);
    const transport = this.#transport;
    this.#refreshTimer = setTimeout(() => {
      if (transport !== this.#transport || this.#state !== 'connected') return;
      this.refreshToken().catch((err) => {
        if (transport !== this.#transport) return;
        this.emit('error', asError(err, 'token refresh failed'));
        // Try again while the token lives; past its expiry the server closes
        // with 4003 and the reconnect fetches a fresh one.
        const left = this.#tokenExpiresAt - Date.now();
        if (left > 0) this.#scheduleRefresh(Math.min(5000, Math.max(250, left / 4)));
      });
    }, Math.max(0, delay));
  }

  /**
   * Pings every `ping` seconds: the server pings at the WebSocket level,
   * which browsers answer without telling the page, so the client needs its
   * own round trip to notice a dead connection (and the HTTP transports
   * need it to keep their session alive).
   * @param {number} seconds
   */
  #startHeartbeat(seconds) {
    clearInterval(this.#heartbeatTimer);
    if (!seconds || seconds <= 0) return;
    const transport = this.#transport;
    this.#heartbeatTimer = setInterval(() => {
      this.#request({ op: 'ping' }, { immediate: true }).catch((err) => {
        if (transport === this.#transport && err.code === ClientErrorCode.TIMEOUT) {
          this.#lost({ code: CloseCode.HEARTBEAT_TIMEOUT, reason: 'no reply to ping' });
        }
      });
    }, seconds * 1000);
  }

  // ---- requests and frames --------------------------------------------------

  /** What subscriptions use of the client. */
  #subscriptionHost = {
    request: (/** @type {Record<string, any>} */ command, /** @type {{immediate?: boolean}|undefined} */ options) =>
      this.#request(command, options),
    forget: (/** @type {Subscription} */ sub) => {
      if (this.#subs.get(sub.channel) === sub) this.#subs.delete(sub.channel);
    },
    isConnected: () => this.#state === 'connected',
    retryDelay: (/** @type {number} */ attempt) => backoffDelay(attempt, this.#reconnect),
  };

  /**
   * Sends a command and resolves with its result. `immediate` commands
   * belong to the current connection (connect, subscribe, refresh, …) and
   * are sent even before 'connected'; others wait for 'connected'.
   * @param {Record<string, any>} command
   * @param {{immediate?: boolean}} [options]
   * @returns {Promise<any>}
   */
  #request(command, { immediate = false } = {}) {
    return new Promise((resolve, reject) => {
      if (this.#state === 'disconnected') {
        reject(new SoriError(ClientErrorCode.DISCONNECTED, `client is disconnected: call connect() before ${command.op}`));
        return;
      }
      if (immediate && !this.#transport) {
        reject(new SoriError(ClientErrorCode.DISCONNECTED, `no connection for ${command.op}`));
        return;
      }
      /** @type {PendingRequest} */
      const entry = { command, resolve, reject, id: 0, timer: /** @type {any} */ (undefined) };
      entry.timer = setTimeout(() => {
        if (entry.id) this.#pending.delete(entry.id);
        else this.#waiting = this.#waiting.filter((e) => e !== entry);
        reject(new SoriError(ClientErrorCode.TIMEOUT, `no reply to ${command.op} within ${this.#requestTimeout} ms`));
      }, this.#requestTimeout);
      if (immediate || this.#state === 'connected') this.#send(entry);
      else this.#waiting.push(entry);
    });
  }

  /** @param {PendingRequest} entry */
  #send(entry) {
    entry.id = ++this.#nextId;
    this.#pending.set(entry.id, entry);
    this.#outgoing.push(JSON.stringify({ id: entry.id, ...entry.command }));
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(() => this.#flush());
    }
  }

  /** Sends the commands queued during this tick, batched as JSON lines. */
  #flush() {
    this.#flushScheduled = false;
    const commands = this.#outgoing;
    this.#outgoing = [];
    if (!this.#transport) return;
    for (const frame of packFrames(commands, this.#maxFrameSize)) this.#transport.send(frame);
  }

  /** @param {string | Array<Record<string, any>|Error>} text a frame from the server, or its messages decoded (binary codec) */
  #receive(text) {
    const transport = this.#transport;
    for (const msg of Array.isArray(text) ? text : decodeMessages(text)) {
      if (transport !== this.#transport) return; // a disconnect push ended it
      if (msg instanceof Error || msg === null || typeof msg !== 'object') {
        this.emit('error', new SoriError(ClientErrorCode.PROTOCOL, `unreadable message from the server: ${String(msg)}`));
        continue;
      }
      if (typeof msg.push === 'string') this.#onPush(msg);
      else if (typeof msg.id === 'number' && msg.id !== 0) this.#onReply(msg);
      else if (msg.error) this.emit('error', SoriError.fromReply(msg.error));
    }
  }

  /** @param {Record<string, any>} msg */
  #onReply(msg) {
    const entry = this.#pending.get(msg.id);
    if (!entry) return; // timed out already
    this.#pending.delete(msg.id);
    clearTimeout(entry.timer);
    if (msg.error) entry.reject(SoriError.fromReply(msg.error));
    else entry.resolve(msg.result ?? {});
  }

  /** @param {Record<string, any>} msg */
  #onPush(msg) {
    if (msg.push === 'disconnect') {
      const code = typeof msg.code === 'number' ? msg.code : CloseCode.ABNORMAL;
      /** @type {CloseInfo} */
      const info = { code, reason: msg.reason ?? '' };
      if (typeof msg.reconnect === 'boolean') info.reconnect = msg.reconnect;
      this.#lost(info);
      return;
    }
    if (typeof msg.channel === 'string') {
      this.#subs.get(msg.channel)?._push(msg);
      return;
    }
    // Pushes of server modules (calls signaling, …) belong to no channel.
    this.emit('push', msg);
  }
}

/**
 * @param {TransportChoice} choice
 * @returns {(context: TransportContext) => Transport}
 */
function transportFactory(choice) {
  if (typeof choice === 'function') return choice;
  switch (choice) {
    case 'websocket':
      return (context) => new WebSocketTransport(context);
    case 'sse':
      return (context) => new SSETransport(context);
    case 'longpoll':
      return (context) => new LongPollTransport(context);
  }
  throw new TypeError(`unknown transport ${JSON.stringify(choice)}: use websocket, sse, longpoll or a factory function`);
}

/**
 * How long before expiry a token with `lifetime` ms left gets refreshed:
 * a quarter of its life, at most maxRefreshLead.
 * @param {number} lifetime
 */
function refreshLead(lifetime) {
  return Math.min(maxRefreshLead, Math.max(0, lifetime) / 4);
}

/**
 * @template T
 * @param {Promise<T>} promise
 * @param {number} ms
 * @param {string} message
 * @returns {Promise<T>}
 */
function withTimeout(promise, ms, message) {
  /** @type {ReturnType<typeof setTimeout>|undefined} */
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new SoriError(ClientErrorCode.TIMEOUT, message)), ms);
  });
  return /** @type {Promise<T>} */ (Promise.race([promise, timeout]).finally(() => clearTimeout(timer)));
}

/**
 * @param {unknown} err
 * @param {string} context
 * @returns {Error}
 */
function asError(err, context) {
  return err instanceof Error ? err : new Error(`${context}: ${String(err)}`);
}

/**
 * The error of a connection attempt in which no transport opened: 'not_sori'
 * when any transport reached a server that is not Sori (browsers hide why a
 * WebSocket failed, so the HTTP transports may be the ones that can tell),
 * else 'unreachable'.
 * @param {string} url
 * @param {unknown[]} failures
 * @returns {SoriError}
 */
function attemptError(url, failures) {
  const details = failures.map((f) => (f instanceof Error ? f.message : String(f))).join('; ');
  const notSori = failures.some((f) => f instanceof TransportOpenError && f.kind === 'not_sori');
  if (notSori) {
    return new SoriError(ClientErrorCode.NOT_SORI, `${url} is not a Sori endpoint (${details})`, { cause: failures });
  }
  return new SoriError(ClientErrorCode.UNREACHABLE, `cannot reach ${url} (${details || 'no transport'})`, { cause: failures });
}
