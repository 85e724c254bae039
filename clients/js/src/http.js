// The fallback transports for networks that block WebSocket: an HTTP session
// (POST /http/open) whose downstream is Server-Sent Events (GET /sse) or long
// polling (GET /poll) and whose upstream is POST /http/send. The server side
// is internal/transport/httpstream; both carry protocol v1 JSON unchanged.
//
// Frames carry sequence numbers; the client acknowledges the last one it
// processed, so a dropped stream or poll resumes without losing a frame.

import { Transport, TransportOpenError, baseURL, statusKind } from './transport.js';

/** Consecutive failed downstream requests tolerated before the connection counts as lost. */
const maxDownstreamFailures = 3;

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * What both HTTP transports share: opening and closing the HTTP session and
 * the ordered POST upstream. Subclasses provide the downstream.
 * @abstract
 */
export class HttpSessionTransport extends Transport {
  /** @type {string} */
  #base;
  /** @type {typeof globalThis.fetch} */
  #fetch;
  /** @type {string[]} frames waiting for the POST in flight to finish */
  #outbox = [];
  #sending = false;
  #closed = false;
  #abort = new AbortController();
  /** "<id>.<secret>" from POST /http/open. */
  session = '';
  /** Sequence number of the last frame received: sent back as the acknowledgement. */
  ack = 0;

  /** @param {import('./transport.js').TransportContext} context */
  constructor(context) {
    super();
    this.#base = baseURL(context.url);
    const f = context.fetch ?? globalThis.fetch;
    if (typeof f !== 'function') throw new Error('no fetch implementation: pass the fetch option');
    this.#fetch = f;
  }

  /**
   * The downstream kind for POST /http/open.
   * @returns {'sse'|'longpoll'}
   */
  get kind() {
    throw new Error('HttpSessionTransport.kind is not implemented');
  }

  /** True once the connection ended (closed by the client or failed). */
  get closed() {
    return this.#closed;
  }

  /** Aborted when the connection ends: pass it to every request. */
  get signal() {
    return this.#abort.signal;
  }

  /**
   * A request to the server's endpoint path with the session in the query.
   * @param {string} path
   * @param {Record<string, string|number>} [query]
   * @param {RequestInit} [init]
   * @returns {Promise<Response>}
   */
  request(path, query = {}, init = {}) {
    const params = new URLSearchParams({ session: this.session });
    for (const [k, v] of Object.entries(query)) params.set(k, String(v));
    return this.#fetch(`${this.#base}${path}?${params}`, { cache: 'no-store', signal: this.signal, ...init });
  }

  async open() {
    const url = `${this.#base}/http/open?transport=${this.kind}`;
    let res;
    try {
      res = await this.#fetch(url, { method: 'POST', cache: 'no-store', signal: this.signal });
    } catch (err) {
      if (this.signal.aborted) throw err;
      // fetch rejects with a TypeError whose cause names the system error (ECONNREFUSED, ENOTFOUND, …).
      const cause = /** @type {any} */ (err)?.cause;
      const detail = cause?.code ?? cause?.message ?? /** @type {Error} */ (err)?.message ?? String(err);
      throw new TransportOpenError('unreachable', `POST ${url} failed: ${detail}`, { cause: err });
    }
    if (!res.ok) {
      throw new TransportOpenError(statusKind(res.status), `POST ${url} answered HTTP ${res.status}`, { status: res.status });
    }
    /** @type {any} */
    let body;
    try {
      body = await res.json();
    } catch (err) {
      throw new TransportOpenError('not_sori', `POST ${url} answered something other than JSON: not a Sori endpoint`, { cause: err });
    }
    if (typeof body?.session !== 'string' || !body.session) {
      throw new TransportOpenError('not_sori', `POST ${url} answered without a session: not a Sori endpoint`);
    }
    this.session = body.session;
    await this.startDownstream();
  }

  /**
   * Starts receiving frames; resolves once the downstream works.
   * @abstract
   * @returns {Promise<void>}
   */
  startDownstream() {
    return Promise.reject(new Error('HttpSessionTransport.startDownstream is not implemented'));
  }

  /**
   * Queues a frame for POST /http/send. One POST is in flight at a time and
   * frames queued meanwhile go together in the next, which keeps commands
   * in order and costs one request per burst rather than per command.
   * @param {string} frame
   */
  send(frame) {
    if (this.#closed) return;
    this.#outbox.push(frame);
    if (!this.#sending) void this.#drainOutbox();
  }

  async #drainOutbox() {
    this.#sending = true;
    try {
      while (this.#outbox.length > 0 && !this.#closed) {
        const body = this.#outbox.join('\n');
        this.#outbox = [];
        let res;
        try {
          /** @type {Record<string, number>} */
          const query = this.ack > 0 ? { ack: this.ack } : {};
          // text/plain keeps a cross-origin POST a "simple" request: no preflight.
          res = await this.request('/http/send', query, {
            method: 'POST',
            body,
            headers: { 'Content-Type': 'text/plain;charset=UTF-8' },
          });
        } catch (err) {
          this.fail({ code: 1006, reason: `POST /http/send failed: ${errorMessage(err)}` });
          return;
        }
        if (res.status === 413) {
          this.fail({ code: 1009, reason: 'a frame was over the server max message size' });
          return;
        }
        if (!res.ok) {
          this.fail({ code: 1006, reason: `POST /http/send answered HTTP ${res.status}` });
          return;
        }
      }
    } finally {
      this.#sending = false;
    }
  }

  /**
   * Ends the connection because it failed, and reports it.
   * @param {import('./transport.js').CloseInfo} info
   */
  fail(info) {
    if (this.#closed) return;
    this.#closed = true;
    this.#abort.abort();
    this.emit('close', info);
  }

  /**
   * Delivers a downstream frame unless the connection has ended.
   * @param {string} text
   */
  deliver(text) {
    if (!this.#closed && text) this.emit('message', text);
  }

  close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#abort.abort();
    if (this.session) {
      // Tell the server at once instead of letting the session time out.
      const params = new URLSearchParams({ session: this.session });
      this.#fetch(`${this.#base}/http/close?${params}`, { method: 'POST', cache: 'no-store' }).then(
        (res) => res.body?.cancel(),
        () => {},
      );
    }
  }
}

/**
 * Protocol v1 over Server-Sent Events (downstream) and POST (upstream). The
 * stream is read with fetch rather than EventSource, which works the same in
 * browsers and Node, reports HTTP statuses, and lets the transport decide
 * when a broken stream means a lost connection.
 */
export class SSETransport extends HttpSessionTransport {
  /** Milliseconds before reopening a dropped stream; the server's `retry:` field overrides it. */
  #retry = 1000;

  get name() {
    return 'sse';
  }

  /** @returns {'sse'} */
  get kind() {
    return 'sse';
  }

  startDownstream() {
    return new Promise(/** @param {(value?: void) => void} resolve */ (resolve, reject) => {
      void this.#streamLoop(() => resolve(), reject);
    });
  }

  /**
   * Reads event streams one after the other, resuming each after the last
   * event id seen, until the connection ends.
   * @param {() => void} opened
   * @param {(err: Error) => void} failedToOpen
   */
  async #streamLoop(opened, failedToOpen) {
    let first = true;
    let failures = 0;
    while (!this.closed) {
      let res;
      try {
        res = await this.request('/sse', { last: this.ack }, { headers: { Accept: 'text/event-stream' } });
      } catch (err) {
        res = null;
        if (first) {
          failedToOpen(new Error(`GET /sse failed: ${errorMessage(err)}`));
          return;
        }
      }
      if (res && res.status === 404) {
        // The session is gone (server restart, or it timed out).
        const err = { code: 1006, reason: 'HTTP session no longer exists' };
        if (first) failedToOpen(new Error(err.reason));
        else this.fail(err);
        return;
      }
      if (res && res.ok && res.body) {
        if (first) {
          first = false;
          opened();
        }
        if (await this.#readStream(res.body)) failures = 0;
      } else if (res) {
        await res.body?.cancel().catch(() => {});
        if (first) {
          failedToOpen(new Error(`GET /sse answered HTTP ${res.status}`));
          return;
        }
      }
      if (this.closed) return;
      if (++failures >= maxDownstreamFailures) {
        this.fail({ code: 1006, reason: 'the event stream keeps failing' });
        return;
      }
      await sleep(this.#retry * failures);
    }
  }

  /**
   * Reads one event stream to its end (WHATWG HTML §9.2.6 "Interpreting an
   * event stream"); reports whether any event arrived.
   * @param {ReadableStream<Uint8Array>} body
   * @returns {Promise<boolean>}
   */
  async #readStream(body) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    let data = [];
    let id = null;
    let received = false;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || this.closed) break;
        buffer += decoder.decode(value, { stream: true });
        for (;;) {
          const m = /\r\n|\r|\n/.exec(buffer);
          // A lone CR at the very end may be the first half of CRLF: wait.
          if (!m || (m[0] === '\r' && m.index === buffer.length - 1)) break;
          const line = buffer.slice(0, m.index);
          buffer = buffer.slice(m.index + m[0].length);
          if (line === '') {
            if (id !== null) this.ack = id;
            if (data.length > 0) {
              received = true;
              this.deliver(data.join('\n'));
            }
            data = [];
            id = null;
            continue;
          }
          if (line.startsWith(':')) {
            received = true; // a heartbeat: the stream is alive
            continue;
          }
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          let value = colon < 0 ? '' : line.slice(colon + 1);
          if (value.startsWith(' ')) value = value.slice(1);
          if (field === 'data') data.push(value);
          else if (field === 'id' && /^\d+$/.test(value)) id = Number(value);
          else if (field === 'retry' && /^\d+$/.test(value)) this.#retry = Number(value);
        }
      }
    } catch {
      // Aborted or the connection dropped: the caller resumes or gives up.
    } finally {
      reader.cancel().catch(() => {});
    }
    return received;
  }
}

/**
 * Protocol v1 over HTTP long polling (downstream) and POST (upstream). Each
 * poll returns every frame after the acknowledged sequence number, or 204
 * after the server's poll wait; the next poll starts at once.
 */
export class LongPollTransport extends HttpSessionTransport {
  get name() {
    return 'longpoll';
  }

  /** @returns {'longpoll'} */
  get kind() {
    return 'longpoll';
  }

  startDownstream() {
    void this.#pollLoop();
    return Promise.resolve();
  }

  async #pollLoop() {
    let failures = 0;
    while (!this.closed) {
      let res;
      try {
        res = await this.request('/poll', { ack: this.ack });
        if (res.status === 404) {
          this.fail({ code: 1006, reason: 'HTTP session no longer exists' });
          return;
        }
        if (res.status === 200 || res.status === 204) {
          const text = res.status === 200 ? await res.text() : '';
          const seq = Number(res.headers.get('X-Sori-Seq'));
          if (Number.isSafeInteger(seq) && seq > this.ack) this.ack = seq;
          this.deliver(text);
          failures = 0;
          continue;
        }
        await res.body?.cancel().catch(() => {});
      } catch {
        if (this.closed) return;
      }
      if (++failures >= maxDownstreamFailures) {
        this.fail({ code: 1006, reason: 'polls keep failing' });
        return;
      }
      await sleep(250 * failures);
    }
  }
}

/** @param {unknown} err */
function errorMessage(err) {
  return err instanceof Error ? err.message : String(err);
}
