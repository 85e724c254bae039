// The binary codec of protocol v1 (docs/protocol.md, "Binary codec";
// subprotocol sori.v1.msgpack): each command, reply and push is one
// MessagePack map with the JSON field names as keys, in a binary WebSocket
// frame; several concatenated maps form a batch. A "data" value is a bin
// holding the value's JSON text (the server stores and forwards payloads as
// JSON). Written by hand: the SDK has no runtime dependencies.

/** The WebSocket subprotocol of the binary codec. */
export const SUBPROTOCOL_MSGPACK = 'sori.v1.msgpack';

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

class Writer {
  constructor() {
    this.buf = new Uint8Array(256);
    this.view = new DataView(this.buf.buffer);
    this.n = 0;
  }

  /** @param {number} k */
  room(k) {
    if (this.n + k <= this.buf.length) return;
    const grown = new Uint8Array(Math.max(this.buf.length * 2, this.n + k));
    grown.set(this.buf.subarray(0, this.n));
    this.buf = grown;
    this.view = new DataView(grown.buffer);
  }

  /** @param {number[]} bytes */
  bytes(...bytes) {
    this.room(bytes.length);
    for (const b of bytes) this.buf[this.n++] = b;
  }

  /** @param {Uint8Array} p */
  raw(p) {
    this.room(p.length);
    this.buf.set(p, this.n);
    this.n += p.length;
  }

  /** @param {number} c @param {number} v */
  u8(c, v) {
    this.bytes(c, v);
  }

  /** @param {number} c @param {number} v */
  u16(c, v) {
    this.room(3);
    this.buf[this.n] = c;
    this.view.setUint16(this.n + 1, v);
    this.n += 3;
  }

  /** @param {number} c @param {number} v */
  u32(c, v) {
    this.room(5);
    this.buf[this.n] = c;
    this.view.setUint32(this.n + 1, v);
    this.n += 5;
  }
}

/**
 * @param {Writer} w
 * @param {unknown} v
 * @param {string} key the map key v is the value of ('' for none)
 */
function write(w, v, key) {
  if (key === 'data') {
    const p = utf8Encoder.encode(JSON.stringify(v ?? null));
    if (p.length < 0x100) w.u8(0xc4, p.length);
    else if (p.length < 0x10000) w.u16(0xc5, p.length);
    else w.u32(0xc6, p.length);
    w.raw(p);
    return;
  }
  if (v === null || v === undefined) return w.bytes(0xc0);
  if (v === true) return w.bytes(0xc3);
  if (v === false) return w.bytes(0xc2);
  if (typeof v === 'number') {
    if (Number.isInteger(v) && v >= 0 && v <= 0xffffffff) {
      if (v < 0x80) return w.bytes(v);
      if (v < 0x100) return w.u8(0xcc, v);
      if (v < 0x10000) return w.u16(0xcd, v);
      return w.u32(0xce, v);
    }
    if (Number.isInteger(v) && v < 0 && v >= -0x80000000) {
      if (v >= -32) return w.bytes(v & 0xff);
      return w.u32(0xd2, v >>> 0);
    }
    w.room(9);
    w.buf[w.n] = 0xcb;
    w.view.setFloat64(w.n + 1, v);
    w.n += 9;
    return;
  }
  if (typeof v === 'string') {
    const p = utf8Encoder.encode(v);
    if (p.length < 32) w.bytes(0xa0 | p.length);
    else if (p.length < 0x100) w.u8(0xd9, p.length);
    else if (p.length < 0x10000) w.u16(0xda, p.length);
    else w.u32(0xdb, p.length);
    w.raw(p);
    return;
  }
  if (Array.isArray(v)) {
    if (v.length < 16) w.bytes(0x90 | v.length);
    else if (v.length < 0x10000) w.u16(0xdc, v.length);
    else w.u32(0xdd, v.length);
    for (const e of v) write(w, e, '');
    return;
  }
  if (typeof v === 'object') {
    const entries = Object.entries(v).filter(([, e]) => e !== undefined);
    if (entries.length < 16) w.bytes(0x80 | entries.length);
    else if (entries.length < 0x10000) w.u16(0xde, entries.length);
    else w.u32(0xdf, entries.length);
    for (const [k, e] of entries) {
      write(w, k, '');
      write(w, e, k);
    }
    return;
  }
  throw new TypeError(`cannot encode a ${typeof v} in MessagePack`);
}

/**
 * Encodes messages (commands) as one binary frame: concatenated maps.
 * @param {Array<Record<string, unknown>>} messages
 * @returns {Uint8Array}
 */
export function encodeMsgpack(messages) {
  const w = new Writer();
  for (const m of messages) write(w, m, '');
  return w.buf.slice(0, w.n);
}

class Reader {
  /** @param {Uint8Array} p */
  constructor(p) {
    this.p = p;
    this.view = new DataView(p.buffer, p.byteOffset, p.byteLength);
    this.i = 0;
  }

  /** @param {number} k */
  need(k) {
    if (this.i + k > this.p.length) throw new Error('truncated MessagePack');
  }

  /** @param {number} size 1, 2, 4 or 8 */
  uint(size) {
    this.need(size);
    const at = this.i;
    this.i += size;
    switch (size) {
      case 1:
        return this.view.getUint8(at);
      case 2:
        return this.view.getUint16(at);
      case 4:
        return this.view.getUint32(at);
      default:
        return Number(this.view.getBigUint64(at));
    }
  }

  /** @param {number} size */
  int(size) {
    this.need(size);
    const at = this.i;
    this.i += size;
    switch (size) {
      case 1:
        return this.view.getInt8(at);
      case 2:
        return this.view.getInt16(at);
      case 4:
        return this.view.getInt32(at);
      default:
        return Number(this.view.getBigInt64(at));
    }
  }

  /** @param {number} n */
  take(n) {
    this.need(n);
    const out = this.p.subarray(this.i, this.i + n);
    this.i += n;
    return out;
  }

  /**
   * @param {string} key the map key of this value ('' for none)
   * @returns {any}
   */
  value(key) {
    this.need(1);
    const c = this.p[this.i++];
    if (c <= 0x7f) return c;
    if (c >= 0xe0) return c - 0x100;
    if ((c & 0xf0) === 0x80) return this.map(c & 0x0f);
    if ((c & 0xf0) === 0x90) return this.array(c & 0x0f);
    if ((c & 0xe0) === 0xa0) return this.str(c & 0x1f, key);
    switch (c) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
      case 0xc5:
      case 0xc6:
        return this.bin(this.uint(1 << (c - 0xc4)), key);
      case 0xca:
        this.need(4);
        this.i += 4;
        return this.view.getFloat32(this.i - 4);
      case 0xcb:
        this.need(8);
        this.i += 8;
        return this.view.getFloat64(this.i - 8);
      case 0xcc:
      case 0xcd:
      case 0xce:
      case 0xcf:
        return this.uint(1 << (c - 0xcc));
      case 0xd0:
      case 0xd1:
      case 0xd2:
      case 0xd3:
        return this.int(1 << (c - 0xd0));
      case 0xd9:
      case 0xda:
      case 0xdb:
        return this.str(this.uint(1 << (c - 0xd9)), key);
      case 0xdc:
        return this.array(this.uint(2));
      case 0xdd:
        return this.array(this.uint(4));
      case 0xde:
        return this.map(this.uint(2));
      case 0xdf:
        return this.map(this.uint(4));
    }
    throw new Error(`unsupported MessagePack type 0x${c.toString(16)}`);
  }

  /** @param {number} n @param {string} key */
  str(n, key) {
    const s = utf8Decoder.decode(this.take(n));
    return key === 'data' ? JSON.parse(s) : s;
  }

  /** @param {number} n @param {string} key */
  bin(n, key) {
    const p = this.take(n);
    if (key !== 'data') return p;
    return JSON.parse(utf8Decoder.decode(p));
  }

  /** @param {number} n */
  array(n) {
    const out = [];
    for (let k = 0; k < n; k++) out.push(this.value(''));
    return out;
  }

  /** @param {number} n */
  map(n) {
    /** @type {Record<string, any>} */
    const out = {};
    for (let k = 0; k < n; k++) {
      const key = this.value('');
      if (typeof key !== 'string') throw new Error('MessagePack map key is not a string');
      out[key] = this.value(key);
    }
    return out;
  }
}

/**
 * Decodes a binary frame from the server into its messages; a frame that
 * cannot be read becomes an Error after the messages read before it.
 * @param {Uint8Array} frame
 * @returns {Array<Record<string, any>|Error>}
 */
export function decodeMsgpack(frame) {
  const r = new Reader(frame);
  const out = [];
  while (r.i < frame.length) {
    try {
      out.push(r.value(''));
    } catch (err) {
      out.push(err instanceof Error ? err : new Error(String(err)));
      break;
    }
  }
  return out;
}
