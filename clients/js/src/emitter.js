// A minimal event emitter shared by the client, subscriptions and transports.

/**
 * Reports an error thrown by an application listener without breaking the
 * SDK's own bookkeeping: the browser's reportError when there is one,
 * otherwise an uncaught exception on a later tick (what Node does with a
 * throwing EventTarget listener).
 * @param {unknown} err
 */
function reportListenerError(err) {
  if (typeof globalThis.reportError === 'function') {
    globalThis.reportError(err);
  } else {
    setTimeout(() => {
      throw err;
    });
  }
}

/**
 * Calls listeners by event name. A listener that throws does not stop the
 * others, nor the SDK code that emitted the event.
 * @template {Record<string, any[]>} Events map of event name to argument list
 */
export class Emitter {
  /** @type {Map<keyof Events, Set<Function>>} */
  #listeners = new Map();

  /**
   * Adds a listener.
   * @template {keyof Events} K
   * @param {K} event
   * @param {(...args: Events[K]) => void} listener
   * @returns {() => void} a function that removes the listener
   */
  on(event, listener) {
    let set = this.#listeners.get(event);
    if (!set) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    set.add(listener);
    return () => this.off(event, listener);
  }

  /**
   * Adds a listener called at most once.
   * @template {keyof Events} K
   * @param {K} event
   * @param {(...args: Events[K]) => void} listener
   * @returns {() => void} a function that removes the listener
   */
  once(event, listener) {
    const off = this.on(event, (...args) => {
      off();
      listener(...args);
    });
    return off;
  }

  /**
   * Removes a listener added with on.
   * @template {keyof Events} K
   * @param {K} event
   * @param {(...args: Events[K]) => void} listener
   */
  off(event, listener) {
    this.#listeners.get(event)?.delete(listener);
  }

  /**
   * Calls the event's listeners with args, in the order they were added.
   * @template {keyof Events} K
   * @param {K} event
   * @param {Events[K]} args
   */
  emit(event, ...args) {
    const set = this.#listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener(...args);
      } catch (err) {
        reportListenerError(err);
      }
    }
  }
}
