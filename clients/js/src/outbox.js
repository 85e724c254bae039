// Outbox: publications that survive being offline, a page reload and a lost
// acknowledgement, and are shown exactly once.
//
// Every item carries a client id (data.client_id). The outbox keeps items in
// a storage (localStorage in browsers) until the server acknowledged them,
// sends them one at a time in the order they were queued whenever the client
// is connected, and sends an item again when its acknowledgement was lost
// (the connection dropped or the reply timed out). A server that
// deduplicates by (user, client id) — Sori's chat does, for 24 h — answers a
// repeat with the original's position and stores nothing, so at-least-once
// sending becomes exactly-once display.

import { Emitter } from './emitter.js';
import { ClientErrorCode, ServerErrorCode, SoriError } from './errors.js';

/**
 * @typedef {object} OutboxItem
 * @property {string} id the client id (also data.client_id)
 * @property {string} channel
 * @property {Record<string, any>} data what is published, client_id included
 * @property {number} createdAt milliseconds since the Unix epoch
 * @property {'pending'|'sending'|'failed'} state
 * @property {number} attempts sends so far
 * @property {{code: number|string, message: string}} [error] why the server refused it (state 'failed')
 */

/**
 * The storage an outbox persists to: localStorage, sessionStorage, or
 * anything with the same three synchronous methods.
 * @typedef {object} OutboxStorage
 * @property {(key: string) => string|null} getItem
 * @property {(key: string, value: string) => void} setItem
 * @property {(key: string) => void} removeItem
 */

/**
 * @typedef {object} OutboxOptions
 * @property {string} [key='default'] names this outbox in the storage (use one per user: 'alice')
 * @property {OutboxStorage|null} [storage] default: globalThis.localStorage when there is one, else memory only
 * @property {number} [maxItems=500] queued items at most; publish() beyond rejects with code 'outbox_full'
 * @property {number} [retryDelay=2000] milliseconds before trying again after a timeout or a rate limit
 * @property {(channel: string, data: Record<string, any>) => Promise<any>} [send] sends one item;
 *   default: client.publish
 */

/**
 * @typedef {object} OutboxEvents
 * @property {[OutboxItem[]]} change the queued items changed (queued, sending, sent, failed, discarded)
 * @property {[OutboxItem, any]} sent the server acknowledged an item (the reply: {epoch, offset} or, for a
 *   repeat the server recognized, the original's position with duplicate: true)
 * @property {[OutboxItem, SoriError]} failed the server refused an item for good; it stays until retry() or discard()
 * @property {[unknown]} error the storage refused to save (quota, private mode): the items live in this page only
 */

const CLIENT_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** A fresh client id: 32 random hex digits. */
export function newClientId() {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Server refusals worth another try later: the item itself is fine. */
const transient = new Set([ServerErrorCode.RATE_LIMITED, ServerErrorCode.UNAVAILABLE, ServerErrorCode.INTERNAL, ServerErrorCode.NOT_CONNECTED]);

/**
 * Queues publications until the server acknowledged them.
 *
 * Not safe for two pages with the same key at once: each page sends what it
 * loaded, so an item may go out twice (the server's deduplication still
 * shows it once). One event loop; no locks.
 *
 * @extends {Emitter<OutboxEvents>}
 */
export class Outbox extends Emitter {
  /** @type {import('./client.js').SoriClient} */
  #client;
  #key;
  /** @type {OutboxStorage|null} */
  #storage;
  #maxItems;
  #retryDelay;
  /** @type {(channel: string, data: Record<string, any>) => Promise<any>} */
  #sendFn;
  /** @type {OutboxItem[]} */
  #items = [];
  /** @type {Map<string, {resolve: (r: any) => void, reject: (e: SoriError) => void}>} */
  #waiters = new Map();
  #busy = false;
  /** flush() was called while a pump ran. */
  #again = false;
  #closed = false;
  /** @type {ReturnType<typeof setTimeout>|undefined} */
  #retryTimer;
  #onState;

  /**
   * @param {import('./client.js').SoriClient} client
   * @param {OutboxOptions} [options]
   */
  constructor(client, options = {}) {
    super();
    this.#client = client;
    this.#key = `sori.outbox.${options.key ?? 'default'}`;
    this.#storage = options.storage === undefined ? (globalThis.localStorage ?? null) : options.storage;
    this.#maxItems = options.maxItems ?? 500;
    this.#retryDelay = options.retryDelay ?? 2000;
    this.#sendFn = options.send ?? ((channel, data) => client.publish(channel, data));
    this.#items = this.#load();
    this.#onState = (/** @type {string} */ state) => { if (state === 'connected') this.flush(); };
    client.on('state', this.#onState);
    queueMicrotask(() => this.flush());
  }

  /** The queued items, oldest first (copies). @returns {OutboxItem[]} */
  get items() {
    return this.#items.map((it) => ({ ...it, data: { ...it.data } }));
  }

  /**
   * Queues data for channel and sends it as soon as the client is connected.
   * data.client_id is set to a fresh id unless it has a valid one. Resolves
   * with the server's reply once acknowledged by this page; rejects when the
   * server refuses the item for good (it then stays queued as 'failed'), or
   * with code 'outbox_full'. The item is persisted before this returns.
   * @param {string} channel
   * @param {Record<string, any>} data
   * @returns {{id: string, sent: Promise<any>}}
   */
  publish(channel, data) {
    if (this.#closed) throw new SoriError(ClientErrorCode.DISCONNECTED, 'the outbox is closed');
    if (this.#items.length >= this.#maxItems) {
      const err = new SoriError('outbox_full', `the outbox holds ${this.#maxItems} items already`);
      return { id: '', sent: Promise.reject(err) };
    }
    const id = typeof data?.client_id === 'string' && CLIENT_ID.test(data.client_id) ? data.client_id : newClientId();
    /** @type {OutboxItem} */
    const item = { id, channel, data: { ...data, client_id: id }, createdAt: Date.now(), state: 'pending', attempts: 0 };
    this.#items.push(item);
    const sent = new Promise((resolve, reject) => this.#waiters.set(id, { resolve, reject }));
    sent.catch(() => { /* reported through 'failed' too; a caller may ignore the promise */ });
    this.#changed();
    this.flush();
    return { id, sent };
  }

  /** Puts a failed item back in the queue and tries to send it. @param {string} id */
  retry(id) {
    const item = this.#items.find((it) => it.id === id);
    if (!item || item.state !== 'failed') return;
    item.state = 'pending';
    delete item.error;
    this.#changed();
    this.flush();
  }

  /** Removes an item that is not being sent. Returns whether it did. @param {string} id */
  discard(id) {
    const i = this.#items.findIndex((it) => it.id === id && it.state !== 'sending');
    if (i < 0) return false;
    this.#items.splice(i, 1);
    this.#waiters.get(id)?.reject(new SoriError('discarded', 'the item was discarded'));
    this.#waiters.delete(id);
    this.#changed();
    return true;
  }

  /** Sends what is pending now if the client is connected (it also runs on every 'connected'). */
  flush() {
    if (this.#closed || this.#client.state !== 'connected') return;
    if (this.#busy) {
      // The running pump may be past its last look for work: look again after it.
      this.#again = true;
      return;
    }
    clearTimeout(this.#retryTimer);
    this.#busy = true;
    this.#again = false;
    this.#pump().finally(() => {
      this.#busy = false;
      if (this.#again) this.flush();
    });
  }

  /** Stops sending; the items stay in the storage for the next outbox with this key. */
  close() {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    this.#client.off('state', this.#onState);
  }

  async #pump() {
    for (;;) {
      if (this.#closed || this.#client.state !== 'connected') return;
      const item = this.#items.find((it) => it.state === 'pending');
      if (!item) return;
      item.state = 'sending';
      item.attempts++;
      this.#changed();
      let result;
      try {
        result = await this.#sendFn(item.channel, item.data);
      } catch (e) {
        const err = e instanceof SoriError ? e : new SoriError(ClientErrorCode.PROTOCOL, String(e?.message ?? e));
        if (!this.#items.includes(item)) continue;
        if (!err.fromServer || transient.has(/** @type {number} */ (err.code))) {
          // No answer (dropped, timed out) or "later": the server may have
          // stored it; the same client id makes sending it again safe.
          item.state = 'pending';
          this.#changed();
          if (err.code !== ClientErrorCode.DISCONNECTED) this.#retryLater();
          return; // the next 'connected' (or the retry timer) resumes, in order
        }
        item.state = 'failed';
        item.error = { code: err.code, message: err.message };
        this.#changed();
        this.#waiters.get(item.id)?.reject(err);
        this.#waiters.delete(item.id);
        this.emit('failed', { ...item }, err);
        continue;
      }
      // 'sent' comes before 'change', so that a view never sees the item
      // neither queued nor acknowledged.
      this.#items = this.#items.filter((it) => it !== item);
      this.#save();
      this.#waiters.get(item.id)?.resolve(result);
      this.#waiters.delete(item.id);
      this.emit('sent', { ...item, data: { ...item.data } }, result);
      this.emit('change', this.items);
    }
  }

  #retryLater() {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => this.flush(), this.#retryDelay);
  }

  #changed() {
    this.#save();
    this.emit('change', this.items);
  }

  /** @returns {OutboxItem[]} */
  #load() {
    let list = [];
    try {
      list = JSON.parse(this.#storage?.getItem(this.#key) ?? '[]');
    } catch { /* unreadable: start empty */ }
    if (!Array.isArray(list)) return [];
    return list
      .filter((it) => it && typeof it.channel === 'string' && typeof it.id === 'string' && CLIENT_ID.test(it.id) && it.data && typeof it.data === 'object')
      // A page that died while sending: the reply may or may not have come;
      // the client id makes the repeat harmless.
      .map((it) => ({ ...it, data: { ...it.data, client_id: it.id }, state: it.state === 'failed' ? 'failed' : 'pending', attempts: Number(it.attempts) || 0 }));
  }

  #save() {
    if (!this.#storage) return;
    try {
      if (this.#items.length) this.#storage.setItem(this.#key, JSON.stringify(this.#items));
      else this.#storage.removeItem(this.#key);
    } catch (err) {
      // Quota or private mode: the items live in memory for this page only.
      this.emit('error', err);
    }
  }
}
