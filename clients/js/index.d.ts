// Type declarations of @sori/client (the sources are plain ES modules with
// JSDoc; this file mirrors them for TypeScript users and editors).

/** A small event emitter: on() returns a function that removes the listener. */
export class Emitter<Events extends { [K in keyof Events]: unknown[] }> {
  on<K extends keyof Events>(event: K, listener: (...args: Events[K]) => void): () => void;
  once<K extends keyof Events>(event: K, listener: (...args: Events[K]) => void): () => void;
  off<K extends keyof Events>(event: K, listener: (...args: Events[K]) => void): void;
  emit<K extends keyof Events>(event: K, ...args: Events[K]): void;
}

/** The SDK version, sent in connect as the client name. */
export const VERSION: string;

// ---- errors ------------------------------------------------------------------

/** Numbered error codes of the server (docs/protocol.md, "Errors"). */
export const ServerErrorCode: Readonly<{
  INTERNAL: 100;
  BAD_REQUEST: 101;
  UNKNOWN_OP: 102;
  NOT_CONNECTED: 103;
  PERMISSION_DENIED: 104;
  ALREADY_CONNECTED: 105;
  ALREADY_SUBSCRIBED: 106;
  NOT_SUBSCRIBED: 107;
  TOO_MANY_SUBSCRIPTIONS: 108;
  RATE_LIMITED: 109;
  MESSAGE_TOO_LARGE: 110;
  INVALID_CHANNEL: 111;
  TOKEN_EXPIRED: 112;
  INVALID_TOKEN: 113;
  BAD_DATA: 114;
  UNAVAILABLE: 115;
  UNKNOWN_METHOD: 116;
  NOT_FOUND: 117;
  CONFLICT: 118;
}>;

/** Codes of failures the client detects itself. */
export const ClientErrorCode: Readonly<{
  TIMEOUT: 'timeout';
  DISCONNECTED: 'disconnected';
  UNSUBSCRIBED: 'unsubscribed';
  TRANSPORT: 'transport';
  PROTOCOL: 'protocol';
  /** No transport reached the server (refused, unknown host, gateway error); the client goes on retrying. */
  UNREACHABLE: 'unreachable';
  /** The server answered, but not as a Sori endpoint (a 404, no subprotocol): final on the first connection. */
  NOT_SORI: 'not_sori';
}>;

export type ClientErrorCodeValue = (typeof ClientErrorCode)[keyof typeof ClientErrorCode];

/** Close codes with a meaning for the client (RFC 6455 §7.4 and Sori's own). */
export const CloseCode: Readonly<{
  NORMAL: 1000;
  GOING_AWAY: 1001;
  PROTOCOL_ERROR: 1002;
  UNSUPPORTED_DATA: 1003;
  ABNORMAL: 1006;
  INVALID_PAYLOAD: 1007;
  POLICY_VIOLATION: 1008;
  MESSAGE_TOO_BIG: 1009;
  INTERNAL_ERROR: 1011;
  SLOW_CONSUMER: 4001;
  HEARTBEAT_TIMEOUT: 4002;
  TOKEN_EXPIRED: 4003;
  FORCE_RECONNECT: 4004;
  BAD_REQUEST: 4500;
  UNAUTHORIZED: 4501;
  KICKED: 4502;
  CONNECTION_LIMIT: 4503;
  CONNECT_TIMEOUT: 4504;
  RATE_LIMIT: 4505;
}>;

/** Whether a connection closed with this code should be reopened. */
export function shouldReconnect(code: number): boolean;

/** The error every SDK promise rejects with. */
export class SoriError extends Error {
  constructor(code: number | string, message: string, options?: { cause?: unknown });
  readonly name: 'SoriError';
  /** The server's numbered code, or a ClientErrorCode string. */
  code: number | ClientErrorCodeValue;
  /** True when the server refused the command (a numbered code). */
  readonly fromServer: boolean;
  static fromReply(error: { code?: number; message?: string }): SoriError;
}

// ---- backoff -----------------------------------------------------------------

export interface ReconnectOptions {
  /** Milliseconds: the ceiling of the first retry's delay. Default 250. */
  minDelay?: number;
  /** Milliseconds: no delay is longer. Default 20000. */
  maxDelay?: number;
  /** Growth of the ceiling per failed attempt. Default 2. */
  factor?: number;
  /** Fraction of the ceiling drawn at random; 1 (default) is full jitter. */
  jitter?: number;
  /** false: never reconnect by itself. Default true. */
  enabled?: boolean;
}

/** The delay (ms) before reconnect attempt `attempt` (0 for the first). */
export function backoffDelay(attempt: number, options: Required<ReconnectOptions>, random?: () => number): number;

// ---- transports --------------------------------------------------------------

export interface CloseInfo {
  code: number;
  reason: string;
  /** The server's explicit hint (a disconnect push); absent: decided by code. */
  reconnect?: boolean;
}

/**
 * What the SDK uses of a WebSocket: the browser API's shape. Browsers' and
 * Node 22's global WebSocket and the `ws` package's class all fit.
 */
export interface WebSocketLike {
  readonly protocol: string;
  onopen: ((event: any) => void) | null;
  onmessage: ((event: any) => void) | null;
  onerror: ((event: any) => void) | null;
  onclose: ((event: any) => void) | null;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  /** Set to 'arraybuffer' for the binary codec. */
  binaryType?: string;
}

/** A WebSocket constructor: `globalThis.WebSocket`, or `WebSocket` from the `ws` package. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export interface TransportContext {
  /** The server's base URL, http(s)://host[:port][/prefix]. */
  url: string;
  WebSocket?: WebSocketConstructor;
  fetch?: typeof globalThis.fetch;
  /** 'binary': the WebSocket transport speaks sori.v1.msgpack; the HTTP transports stay JSON. */
  codec?: 'json' | 'binary';
}

/** Why a transport could not open: the server was out of reach, or answered as something that is not Sori. */
export class TransportOpenError extends Error {
  constructor(kind: 'unreachable' | 'not_sori', message: string, options?: { cause?: unknown; status?: number });
  readonly kind: 'unreachable' | 'not_sori';
  /** The HTTP status the server answered, when known. */
  readonly status?: number;
}

/**
 * One transport connection. Emits 'message' (a frame of one or more JSON
 * messages) and, at most once and only after open() resolved, 'close'.
 */
export abstract class Transport extends Emitter<{ message: [text: string]; close: [info: CloseInfo] }> {
  /** A short name: 'websocket', 'sse', 'longpoll', … */
  readonly name: string;
  /** Resolves when frames can be sent; rejects when it cannot open (the client tries the next transport). */
  open(): Promise<void>;
  /** Sends one frame (commands as JSON lines); frames arrive in order. */
  send(frame: string): void;
  /** Ends the connection at the client's request; no 'close' event follows. */
  close(): void;
}

/** The subprotocol of Sori's WebSocket endpoint. */
export const SUBPROTOCOL: 'sori.v1';

/** Protocol v1 over a WebSocket (GET /ws). */
export class WebSocketTransport extends Transport {
  constructor(context: TransportContext);
}

/** Shared by the HTTP transports: the HTTP session and the POST upstream. */
export abstract class HttpSessionTransport extends Transport {
  constructor(context: TransportContext);
  readonly kind: 'sse' | 'longpoll';
  readonly closed: boolean;
  readonly signal: AbortSignal;
  session: string;
  ack: number;
  request(path: string, query?: Record<string, string | number>, init?: RequestInit): Promise<Response>;
  startDownstream(): Promise<void>;
  fail(info: CloseInfo): void;
  deliver(text: string): void;
}

/** Protocol v1 over Server-Sent Events (GET /sse) and POST /http/send. */
export class SSETransport extends HttpSessionTransport {}

/** Protocol v1 over long polling (GET /poll) and POST /http/send. */
export class LongPollTransport extends HttpSessionTransport {}

/** A transport by name, or a function that creates one per connection attempt. */
export type TransportChoice = 'websocket' | 'sse' | 'longpoll' | ((context: TransportContext) => Transport);

// ---- subscriptions -----------------------------------------------------------

export interface Position {
  epoch: string;
  offset: number;
}

export interface Publication<T = any> {
  channel: string;
  /** Position within the channel's epoch; grows by one per publication. */
  offset: number;
  data: T;
  /** The publisher's user id; empty for the server API. */
  user: string;
  /** Milliseconds since the Unix epoch, when the server accepted it. */
  time?: number;
}

export interface ClientInfo {
  user: string;
  client: string;
}

export interface SubscribedEvent {
  epoch: string;
  offset: number;
  /** A resubscribe after a reconnect. */
  resumed: boolean;
  /** Every missed publication was delivered (false on a first subscribe). */
  recovered: boolean;
  /** How many missed publications the server sent. */
  recoveredCount: number;
}

export interface UnrecoveredEvent {
  /** The last position received before the reconnect. */
  previous: Position;
  /** The channel's position now; publications continue from here. */
  current: Position;
}

export interface UnsubscribedEvent {
  /** The server's unsub code, the refused subscribe's error code, or 0 for unsubscribe(). */
  code: number | string;
  reason: string;
}

export interface SubscriptionHandlers<T = any> {
  onPublication?: (publication: Publication<T>) => void;
  onJoin?: (info: ClientInfo) => void;
  onLeave?: (info: ClientInfo) => void;
  onUnrecovered?: (event: UnrecoveredEvent) => void;
  onError?: (error: SoriError) => void;
}

export type SubscriptionState = 'subscribing' | 'subscribed' | 'unsubscribed';

export interface SubscriptionEvents<T = any> {
  publication: [publication: Publication<T>];
  join: [info: ClientInfo];
  leave: [info: ClientInfo];
  subscribed: [event: SubscribedEvent];
  unrecovered: [event: UnrecoveredEvent];
  unsubscribed: [event: UnsubscribedEvent];
  error: [error: SoriError];
  state: [state: SubscriptionState];
}

export interface HistoryOptions {
  /** The newest `limit` publications. */
  limit?: number;
  /** Those after this position instead. */
  since?: Position;
}

export interface HistoryResult<T = any> {
  epoch: string;
  offset: number;
  /** Oldest first. */
  publications: Publication<T>[];
}

/**
 * A subscription to one channel; it resumes by itself after reconnects.
 * Created by SoriClient.subscribe.
 */
export class Subscription<T = any> extends Emitter<SubscriptionEvents<T>> {
  private constructor();
  readonly channel: string;
  readonly state: SubscriptionState;
  /** The position of the last publication delivered; null before the first subscribe succeeded. */
  readonly position: Position | null;
  /** Publications dropped as duplicates (by offset): a diagnostic that should stay 0. */
  readonly duplicatesDropped: number;
  /** Resolves when (next) subscribed; rejects when the subscription ends first. */
  ready(): Promise<void>;
  publish(data: T): Promise<Position>;
  history(options?: HistoryOptions): Promise<HistoryResult<T>>;
  presence(): Promise<{ clients: ClientInfo[] }>;
  /** Ends the subscription at once; settles when the server confirmed (or at once offline). */
  unsubscribe(): Promise<void>;
}

// ---- client ------------------------------------------------------------------

export interface SoriClientOptions {
  /** The server's base URL (http://host:7700) or WebSocket endpoint (ws://host:7700/ws); default in a browser: the page's origin. */
  url?: string;
  /** Connection token (JWT). Omit token and getToken for anonymous connections. */
  token?: string;
  /** Returns a fresh token: to connect when none is at hand, to refresh before expiry, after the server reported it expired. */
  getToken?: () => Promise<string>;
  /** WebSocket constructor; default globalThis.WebSocket (Node 20: pass the ws package's). */
  WebSocket?: WebSocketConstructor;
  /** fetch for the HTTP transports; default globalThis.fetch. */
  fetch?: typeof globalThis.fetch;
  /** Tried in order on each connection attempt; default ['websocket', 'sse', 'longpoll']. */
  transports?: TransportChoice[];
  /** 'binary': WebSocket frames in the binary codec (sori.v1.msgpack, docs/protocol.md); default 'json'. The HTTP transports always speak JSON. */
  codec?: 'json' | 'binary';
  /** Milliseconds a request (or opening a transport) may take; default 10000. */
  requestTimeout?: number;
  /**
   * Milliseconds connect() waits for the first connection before it rejects (code 'timeout', the last
   * attempt's error as cause) and the client stops; default 0: keep trying.
   */
  connectTimeout?: number;
  reconnect?: ReconnectOptions;
  /** Characters per outbound frame when commands are batched; default 16384. */
  maxFrameSize?: number;
  /** Client name sent in connect, for server logs. */
  name?: string;
}

export interface ConnectInfo {
  /** The connection id. */
  client: string;
  /** The user id ('' when anonymous). */
  user: string;
  /** The server version. */
  version: string;
  /** Seconds until the token expires (0: no expiry). */
  expiresIn: number;
  /** The server's heartbeat interval in seconds. */
  ping: number;
  /** The transport in use. */
  transport: string;
}

export type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'disconnected';

export interface StateInfo {
  previous: ConnectionState;
  /** Close code that caused 'reconnecting' or 'disconnected'. */
  code?: number;
  reason?: string;
  /** Milliseconds until the next attempt ('reconnecting' only). */
  delay?: number;
}

export interface DisconnectedEvent {
  /** Close code (1000 after disconnect()). */
  code: number;
  reason: string;
  /** Why: the server's error when connect was refused, 'not_sori' (a wrong URL) or 'timeout' (connectTimeout). */
  error?: SoriError;
}

export interface ClientEvents {
  state: [state: ConnectionState, info: StateInfo];
  connected: [info: ConnectInfo];
  disconnected: [event: DisconnectedEvent];
  /**
   * Non-fatal problems: a failed connection attempt (SoriError 'unreachable' or 'not_sori', the transports'
   * errors as cause), a failed token refresh, an unreadable frame, …
   */
  error: [error: Error];
  /** A push that belongs to no subscription, e.g. {"push":"call",…} from the calls module. */
  push: [message: Record<string, any>];
}

/** A client for one Sori server: one connection that survives transport failures. */
export class SoriClient extends Emitter<ClientEvents> {
  constructor(options?: SoriClientOptions);
  readonly state: ConnectionState;
  /** The connect reply, or null while not connected. */
  readonly connection: ConnectInfo | null;
  /** The transport in use, or null while not connected. */
  readonly transport: string | null;
  /**
   * Resolves on the next successful connect; rejects when the client ends up 'disconnected' first: a refused
   * token, a URL that is not a Sori endpoint ('not_sori'), no connection within connectTimeout ('timeout').
   */
  connect(): Promise<ConnectInfo>;
  /** Closes the connection, stops reconnecting, rejects pending requests; subscriptions stay for a later connect(). */
  disconnect(): void;
  /** @throws SoriError 106 when the channel already has a subscription. */
  subscribe<T = any>(channel: string, handlers?: SubscriptionHandlers<T>): Subscription<T>;
  getSubscription<T = any>(channel: string): Subscription<T> | undefined;
  publish<T = any>(channel: string, data: T): Promise<Position>;
  history<T = any>(channel: string, options?: HistoryOptions): Promise<HistoryResult<T>>;
  presence(channel: string): Promise<{ clients: ClientInfo[] }>;
  rpc<R = any>(method: string, data?: unknown): Promise<R>;
  ping(): Promise<void>;
  /** Fetches a token with getToken and replaces the connection's token now. */
  refreshToken(): Promise<void>;
}

// Outbox (src/outbox.js): publications queued until the server acknowledged them.

export interface OutboxItem<T = Record<string, any>> {
  /** The client id, also data.client_id. */
  id: string;
  channel: string;
  data: T & { client_id: string };
  /** Milliseconds since the Unix epoch. */
  createdAt: number;
  state: 'pending' | 'sending' | 'failed';
  attempts: number;
  /** Why the server refused it (state 'failed'). */
  error?: { code: number | string; message: string };
}

/** localStorage, sessionStorage, or anything with these synchronous methods. */
export interface OutboxStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export interface OutboxOptions {
  /** Names this outbox in the storage; use one per user. Default 'default'. */
  key?: string;
  /** Default: globalThis.localStorage when there is one, else memory only (null: memory only). */
  storage?: OutboxStorage | null;
  /** Queued items at most (default 500); publish() beyond rejects with code 'outbox_full'. */
  maxItems?: number;
  /** Milliseconds before trying again after a timeout or a rate limit (default 2000). */
  retryDelay?: number;
  /** Sends one item; default client.publish. */
  send?: (channel: string, data: Record<string, any>) => Promise<any>;
}

export interface OutboxEvents {
  change: [items: OutboxItem[]];
  /** The reply: {epoch, offset}, or for a repeat the server recognized, the original's position with duplicate: true. */
  sent: [item: OutboxItem, result: any];
  failed: [item: OutboxItem, error: SoriError];
  error: [error: unknown];
}

/** A fresh client id (32 hex digits). */
export function newClientId(): string;

/**
 * Queues publications (each with a client id in data.client_id) in a storage, sends them in order whenever the
 * client is connected, and sends again after a lost acknowledgement; a server that deduplicates by client id
 * (Sori's chat) shows each exactly once.
 */
export class Outbox extends Emitter<OutboxEvents> {
  constructor(client: SoriClient, options?: OutboxOptions);
  /** The queued items, oldest first (copies). */
  readonly items: OutboxItem[];
  /** Queues data (persisted before it returns); sent resolves with the server's reply once acknowledged. */
  publish<T extends Record<string, any>>(channel: string, data: T): { id: string; sent: Promise<any> };
  /** Puts a failed item back in the queue. */
  retry(id: string): void;
  /** Removes an item that is not being sent. */
  discard(id: string): boolean;
  /** Sends what is pending now, if connected (also runs on every 'connected'). */
  flush(): void;
  /** Stops sending; the items stay in the storage. */
  close(): void;
}
