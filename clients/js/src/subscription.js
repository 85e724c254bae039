// One channel subscription: its position (epoch, offset), its resume after
// reconnects, and the events an application listens to.

import { Emitter } from './emitter.js';
import { ClientErrorCode, ServerErrorCode, SoriError } from './errors.js';

/**
 * A publication as delivered to the application.
 * @typedef {object} Publication
 * @property {string} channel
 * @property {number} offset position within the channel's epoch; grows by one per publication
 * @property {any} data the publisher's JSON value
 * @property {string} user the publisher's user id; empty for the server API
 * @property {number} [time] milliseconds since the Unix epoch, when the server accepted it
 */

/**
 * A connection in a channel's presence.
 * @typedef {object} ClientInfo
 * @property {string} user
 * @property {string} client
 */

/**
 * @typedef {object} Position
 * @property {string} epoch
 * @property {number} offset
 */

/**
 * @typedef {object} SubscribedEvent
 * @property {string} epoch
 * @property {number} offset the position after the recovered publications
 * @property {boolean} resumed this was a resubscribe after a reconnect
 * @property {boolean} recovered every missed publication was delivered (always false on a first subscribe)
 * @property {number} recoveredCount how many missed publications the server sent
 */

/**
 * @typedef {object} UnrecoveredEvent
 * @property {Position} previous the last position received before the reconnect
 * @property {Position} current the channel's position now; publications continue from here
 */

/**
 * @typedef {object} UnsubscribedEvent
 * @property {number|string} code the server's unsub push code, its error code (a refused subscribe), or 0 for unsubscribe()
 * @property {string} reason
 */

/**
 * @typedef {object} SubscriptionHandlers
 * @property {(publication: Publication) => void} [onPublication]
 * @property {(info: ClientInfo) => void} [onJoin]
 * @property {(info: ClientInfo) => void} [onLeave]
 * @property {(event: UnrecoveredEvent) => void} [onUnrecovered]
 * @property {(error: SoriError) => void} [onError]
 */

/**
 * @typedef {object} SubscriptionEvents
 * @property {[Publication]} publication
 * @property {[ClientInfo]} join
 * @property {[ClientInfo]} leave
 * @property {[SubscribedEvent]} subscribed
 * @property {[UnrecoveredEvent]} unrecovered
 * @property {[UnsubscribedEvent]} unsubscribed
 * @property {[SoriError]} error
 * @property {['subscribing'|'subscribed'|'unsubscribed']} state
 */

/** @type {Set<number|string>} subscribe errors worth retrying on the same connection */
const transientSubscribeErrors = new Set([ServerErrorCode.INTERNAL, ServerErrorCode.RATE_LIMITED, ClientErrorCode.TIMEOUT]);

/**
 * What a Subscription needs from its client; SoriClient provides it.
 * @typedef {object} SubscriptionHost
 * @property {(command: Record<string, any>, options?: {immediate?: boolean}) => Promise<any>} request
 * @property {(sub: Subscription) => void} forget
 * @property {() => boolean} isConnected
 * @property {(attempt: number) => number} retryDelay
 */

/**
 * A subscription to one channel, created by SoriClient.subscribe. It stays
 * active across reconnects: after each one it resubscribes from the offset
 * of the last publication it delivered, so the application sees every
 * publication exactly once and in order, or an 'unrecovered' event when the
 * server can no longer prove continuity (then reload state, e.g. through
 * history()).
 *
 * States: 'subscribing' (waiting for the server, also while the client
 * reconnects), 'subscribed', 'unsubscribed' (final).
 *
 * @extends {Emitter<SubscriptionEvents>}
 */
export class Subscription extends Emitter {
  /** @type {SubscriptionHost} */
  #host;
  /** @type {'subscribing'|'subscribed'|'unsubscribed'} */
  #state = 'subscribing';
  /** @type {string|null} */
  #epoch = null;
  /** @type {number|null} offset of the last publication delivered (or the position at subscribe) */
  #offset = null;
  /** @type {Array<Record<string, any>>} pushes that arrived while a subscribe was in flight, delivered after its reply */
  #held = [];
  /** Identifies the subscribe attempt whose reply counts. */
  #attempt = 0;
  #retries = 0;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #retryTimer;
  /** Publications dropped because their offset was already delivered. */
  #duplicates = 0;

  /**
   * @param {SubscriptionHost} host
   * @param {string} channel
   * @param {SubscriptionHandlers} [handlers]
   * @internal Use SoriClient.subscribe.
   */
  constructor(host, channel, handlers = {}) {
    super();
    this.#host = host;
    /** The channel name. */
    this.channel = channel;
    if (handlers.onPublication) this.on('publication', handlers.onPublication);
    if (handlers.onJoin) this.on('join', handlers.onJoin);
    if (handlers.onLeave) this.on('leave', handlers.onLeave);
    if (handlers.onUnrecovered) this.on('unrecovered', handlers.onUnrecovered);
    if (handlers.onError) this.on('error', handlers.onError);
  }

  /** @returns {'subscribing'|'subscribed'|'unsubscribed'} */
  get state() {
    return this.#state;
  }

  /**
   * The position of the last publication delivered, or null before the first
   * subscribe succeeded.
   * @returns {Position|null}
   */
  get position() {
    return this.#epoch === null ? null : { epoch: this.#epoch, offset: this.#offset ?? 0 };
  }

  /** How many publications were dropped as duplicates (by offset). Should stay 0; a diagnostic. */
  get duplicatesDropped() {
    return this.#duplicates;
  }

  /**
   * Resolves when the subscription is (next) subscribed; rejects when it ends
   * first (a refused subscribe rejects with the server's SoriError).
   * @returns {Promise<void>}
   */
  ready() {
    if (this.#state === 'subscribed') return Promise.resolve();
    if (this.#state === 'unsubscribed') {
      return Promise.reject(new SoriError(ClientErrorCode.UNSUBSCRIBED, `not subscribed to ${this.channel}`));
    }
    return new Promise((resolve, reject) => {
      const offs = [
        this.on('subscribed', () => {
          offs.forEach((off) => off());
          resolve();
        }),
        this.on('unsubscribed', (e) => {
          offs.forEach((off) => off());
          reject(
            typeof e.code === 'number' && e.code >= 100 && e.code < 1000
              ? new SoriError(e.code, e.reason)
              : new SoriError(ClientErrorCode.UNSUBSCRIBED, e.reason),
          );
        }),
      ];
    });
  }

  /**
   * Publishes data to this channel.
   * @param {any} data any JSON value
   * @returns {Promise<Position>} the publication's position
   */
  publish(data) {
    return this.#host.request({ op: 'publish', channel: this.channel, data });
  }

  /**
   * Reads the channel's history: the newest `limit` publications, or with
   * `since` those after that position. Oldest first.
   * @param {{limit?: number, since?: Position}} [options]
   * @returns {Promise<{epoch: string, offset: number, publications: Publication[]}>}
   */
  async history(options = {}) {
    return historyRequest(this.#host, this.channel, options);
  }

  /**
   * Lists the connections subscribed to the channel (namespaces with presence).
   * @returns {Promise<{clients: ClientInfo[]}>}
   */
  presence() {
    return this.#host.request({ op: 'presence', channel: this.channel });
  }

  /**
   * Ends the subscription. It is forgotten at once (no more events); the
   * promise settles when the server confirmed, or at once when offline.
   * @returns {Promise<void>}
   */
  async unsubscribe() {
    if (this.#state === 'unsubscribed') return;
    const wasActive = this.#host.isConnected();
    this.#end(0, 'unsubscribe called');
    if (!wasActive) return;
    try {
      await this.#host.request({ op: 'unsubscribe', channel: this.channel }, { immediate: true });
    } catch (err) {
      // Not subscribed on the server (a refused subscribe) or the connection
      // is gone: either way nothing is left to undo.
      if (!(err instanceof SoriError)) throw err;
    }
  }

  // The methods below are the client's side of the contract.

  /**
   * Sends subscribe on the current connection, with the last position when
   * there is one, so the server sends exactly what was missed.
   * @internal
   */
  _subscribe() {
    if (this.#state === 'unsubscribed') return;
    clearTimeout(this.#retryTimer);
    this.#setState('subscribing');
    this.#held = [];
    const attempt = ++this.#attempt;
    const command = { op: 'subscribe', channel: this.channel };
    const resuming = this.#epoch !== null;
    if (resuming) Object.assign(command, { recover: true, epoch: this.#epoch, offset: this.#offset ?? 0 });
    this.#host.request(command, { immediate: true }).then(
      (result) => {
        if (attempt === this.#attempt && this.#state === 'subscribing') this.#subscribed(result, resuming);
      },
      (err) => {
        if (attempt === this.#attempt && this.#state === 'subscribing') this.#refused(err);
      },
    );
  }

  /**
   * The connection was lost: wait for the next one, keeping the position.
   * @internal
   */
  _connectionLost() {
    if (this.#state === 'unsubscribed') return;
    clearTimeout(this.#retryTimer);
    this.#attempt++; // a late reply from the old connection no longer counts
    this.#held = [];
    this.#setState('subscribing');
  }

  /**
   * A push for this channel.
   * @param {Record<string, any>} push
   * @internal
   */
  _push(push) {
    if (this.#state === 'unsubscribed') return;
    if (this.#state === 'subscribing') {
      this.#held.push(push);
      return;
    }
    switch (push.push) {
      case 'pub':
        this.#deliver(push);
        break;
      case 'join':
        this.emit('join', push.info);
        break;
      case 'leave':
        this.emit('leave', push.info);
        break;
      case 'unsub':
        this.#end(push.code ?? 0, push.reason || 'unsubscribed by the server');
        break;
    }
  }

  /**
   * @param {Record<string, any>} result
   * @param {boolean} resuming
   */
  #subscribed(result, resuming) {
    this.#retries = 0;
    const recovered = resuming && result.recovered === true;
    const publications = recovered && Array.isArray(result.publications) ? result.publications : [];
    /** @type {UnrecoveredEvent|null} */
    let unrecovered = null;
    if (resuming && !recovered) {
      unrecovered = {
        previous: { epoch: /** @type {string} */ (this.#epoch), offset: this.#offset ?? 0 },
        current: { epoch: result.epoch, offset: result.offset },
      };
    }
    if (!recovered) {
      this.#epoch = result.epoch;
      this.#offset = result.offset;
    }
    this.#setState('subscribed');
    if (unrecovered) this.emit('unrecovered', unrecovered);
    for (const p of publications) {
      if (this.#state !== 'subscribed') return;
      this.#deliver(p);
    }
    if (recovered) {
      // Recovery brought us to the channel's position (conflating
      // namespaces may skip offsets; never move backwards).
      this.#epoch = result.epoch;
      this.#offset = Math.max(this.#offset ?? 0, result.offset);
    }
    if (this.#state !== 'subscribed') return;
    this.emit('subscribed', {
      epoch: result.epoch,
      offset: this.#offset ?? 0,
      resumed: resuming,
      recovered,
      recoveredCount: publications.length,
    });
    const held = this.#held;
    this.#held = [];
    for (const push of held) this._push(push);
  }

  /** @param {unknown} err */
  #refused(err) {
    if (!(err instanceof SoriError) || err.code === ClientErrorCode.DISCONNECTED) {
      return; // the next connection resubscribes
    }
    if (transientSubscribeErrors.has(err.code) && this.#host.isConnected()) {
      const delay = this.#host.retryDelay(this.#retries++);
      this.#retryTimer = setTimeout(() => {
        if (this.#host.isConnected()) this._subscribe();
      }, delay);
      this.emit('error', err);
      return;
    }
    this.emit('error', err);
    this.#end(err.code, err.message);
  }

  /** @param {Record<string, any>} p a pub push or a recovered publication */
  #deliver(p) {
    const offset = typeof p.offset === 'number' ? p.offset : 0;
    if (offset > 0 && this.#offset !== null && offset <= this.#offset) {
      this.#duplicates++;
      return;
    }
    if (offset > 0) this.#offset = offset;
    /** @type {Publication} */
    const publication = { channel: this.channel, offset, data: p.data, user: p.user ?? '' };
    if (p.time !== undefined) publication.time = p.time;
    this.emit('publication', publication);
  }

  /**
   * @param {number|string} code
   * @param {string} reason
   */
  #end(code, reason) {
    if (this.#state === 'unsubscribed') return;
    clearTimeout(this.#retryTimer);
    this.#attempt++;
    this.#held = [];
    this.#host.forget(this);
    this.#setState('unsubscribed');
    this.emit('unsubscribed', { code, reason });
  }

  /** @param {'subscribing'|'subscribed'|'unsubscribed'} state */
  #setState(state) {
    if (this.#state === state) return;
    this.#state = state;
    this.emit('state', state);
  }
}

/**
 * Sends a history command and labels the publications with their channel.
 * @param {SubscriptionHost} host
 * @param {string} channel
 * @param {{limit?: number, since?: Position}} options
 * @returns {Promise<{epoch: string, offset: number, publications: Publication[]}>}
 */
export async function historyRequest(host, channel, options = {}) {
  /** @type {Record<string, any>} */
  const command = { op: 'history', channel };
  if (options.limit !== undefined) command.limit = options.limit;
  if (options.since) {
    command.epoch = options.since.epoch;
    command.offset = options.since.offset;
  }
  const result = await host.request(command);
  const publications = (result.publications ?? []).map((/** @type {any} */ p) => ({ channel, ...p }));
  return { epoch: result.epoch, offset: result.offset, publications };
}
