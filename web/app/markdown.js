// A safe Markdown subset for chat messages, parsed into plain objects (no
// DOM, so node tests run it) and turned into DOM nodes by format.js. Nothing
// here produces HTML: a message is data, and every character of it ends up
// in a text node or in an attribute set through the DOM API.
//
// Blocks: paragraphs (newlines kept), ``` code blocks, > quotes, - * + lists
// and 1. numbered lists. Inline: **bold** __bold__, *italic* _italic_,
// ~~strike~~, `code`, [text](url) and bare http(s) URLs, @mentions, and \
// escapes. Link targets are http, https or mailto only; anything else stays
// literal text.
//
// The parser is linear in the length of the text up to a small constant:
// closing delimiters are searched at most once per delimiter kind and scan
// position (see Closers), and nesting stops at MAX_DEPTH, so an "emphasis
// bomb" of thousands of unmatched or nested markers costs no more than
// plain text of the same length.

/** Inline nesting beyond this depth is shown as literal text. */
export const MAX_DEPTH = 6;
/** Quotes nested deeper than this are kept as text. */
const MAX_QUOTE_DEPTH = 3;
const MAX_LINK_TEXT = 500;
const MAX_URL = 2048;

/**
 * Counts the parser's steps (scan-loop iterations and characters examined
 * while looking for closers), so tests can check that the work grows
 * linearly with the input without timing anything.
 */
export const meter = { steps: 0 };

const PUNCT = new Set('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~');
const isSpace = (c) => c === undefined || c === ' ' || c === '\t' || c === '\n' || c === '\r';
const isWord = (c) => c !== undefined && /[\p{L}\p{N}_]/u.test(c);

/**
 * Returns the link target when url is an absolute http, https or mailto URL
 * (normalized by the URL parser), else ''.
 * @param {string} url
 */
export function safeLink(url) {
  try {
    const u = new URL(url);
    if (u.protocol === 'http:' || u.protocol === 'https:' || u.protocol === 'mailto:') return u.href;
  } catch { /* not a URL */ }
  return '';
}

/**
 * Parses message text into blocks:
 *   {t:'p', c:inline[]} · {t:'pre', v:string} · {t:'quote', c:blocks[]} ·
 *   {t:'ul'|'ol', start?:number, items:inline[][]}
 * Inline nodes: {t:'text', v} · {t:'code', v} · {t:'b'|'i'|'s', c:inline[]} ·
 *   {t:'a', href, c:inline[]} · {t:'mention', v:username}
 * @param {string} text
 * @returns {object[]}
 */
export function parse(text, depth = 0) {
  const lines = String(text ?? '').replace(/\r\n?/g, '\n').split('\n');
  const blocks = [];
  let para = [];
  const flush = () => {
    if (para.length) blocks.push({ t: 'p', c: parseInline(para.join('\n')) });
    para = [];
  };
  for (let i = 0; i < lines.length;) {
    const line = lines[i];
    const fence = line.match(/^ {0,3}(`{3,})[^`]*$/);
    if (fence) {
      flush();
      const close = new RegExp(`^ {0,3}\`{${fence[1].length},}\\s*$`);
      const body = [];
      i++;
      while (i < lines.length && !close.test(lines[i])) body.push(lines[i++]);
      i++; // the closing fence (or past the end: an unclosed block runs to the end)
      blocks.push({ t: 'pre', v: body.join('\n') });
      continue;
    }
    if (/^ {0,3}>/.test(line) && depth < MAX_QUOTE_DEPTH) {
      flush();
      const body = [];
      while (i < lines.length && /^ {0,3}>/.test(lines[i])) body.push(lines[i++].replace(/^ {0,3}> ?/, ''));
      blocks.push({ t: 'quote', c: parse(body.join('\n'), depth + 1) });
      continue;
    }
    const bullet = /^ {0,3}[-*+] +(.*)$/;
    const numbered = /^ {0,3}(\d{1,9})[.)] +(.*)$/;
    if (bullet.test(line) && !/^ {0,3}([-*_])( *\1){2,} *$/.test(line)) {
      flush();
      const items = [];
      while (i < lines.length && bullet.test(lines[i])) items.push(parseInline(lines[i++].match(bullet)[1]));
      blocks.push({ t: 'ul', items });
      continue;
    }
    if (numbered.test(line)) {
      flush();
      const start = Number(line.match(numbered)[1]);
      const items = [];
      while (i < lines.length && numbered.test(lines[i])) items.push(parseInline(lines[i++].match(numbered)[2]));
      blocks.push({ t: 'ol', start, items });
      continue;
    }
    if (line.trim() === '') { flush(); i++; continue; }
    para.push(line);
    i++;
  }
  flush();
  return blocks;
}

/**
 * Finds closing delimiters. The "next valid closer at or after from" only
 * moves forward as from does, so the answer of the previous search is reused
 * while from has not passed it: each delimiter kind scans the text once.
 */
class Closers {
  constructor(s) { this.s = s; this.memo = new Map(); }

  /** The start of the next run of ch usable as a closer of length len at or after from, or -1. */
  find(ch, len, from) {
    const key = ch + len;
    const m = this.memo.get(key);
    if (m && from >= m.from && (m.at === -1 || from <= m.at)) return m.at;
    const at = this.#scan(ch, len, from);
    this.memo.set(key, { from, at });
    return at;
  }

  #scan(ch, len, from) {
    const s = this.s;
    for (let q = s.indexOf(ch, from); q !== -1; q = s.indexOf(ch, q)) {
      meter.steps += q - from + 1;
      from = q;
      let r = 1;
      while (s[q + r] === ch) r++;
      meter.steps += r;
      const ok = (len === 1 ? r === 1 || r >= 3 : r >= len) && !isSpace(s[q - 1]) &&
        (ch !== '_' || !isWord(s[q + r]));
      if (ok) return q + r - len; // the last len characters of the run close
      q += r;
    }
    meter.steps += s.length - from;
    return -1;
  }
}

const EMPH = { '*': ['i', 'b'], _: ['i', 'b'], '~': [null, 's'] };
const LINK = /\[([^[\]\n]{1,500})\]\(([^\s()<>]{1,2048})\)/y;
const BARE_URL = /https?:\/\/[^\s<>"'`]+/iy;
const TRAILING = /[.,;:!?)\]}'"*_~]+$/;
const MENTION = /@([A-Za-z0-9][A-Za-z0-9_.-]{0,31})/y;

/**
 * Parses one run of inline text (a paragraph, a list item, a quote line).
 * @param {string} s
 * @returns {object[]}
 */
export function parseInline(s, depth = 0) {
  s = String(s ?? '');
  const out = [];
  let text = '';
  const push = (node) => {
    if (text) { out.push({ t: 'text', v: text }); text = ''; }
    out.push(node);
  };
  const closers = new Closers(s);
  const tickFail = new Map(); // run length -> from where no closing run exists
  const n = s.length;
  let i = 0;
  while (i < n) {
    meter.steps++;
    const c = s[i];
    if (c === '\\' && PUNCT.has(s[i + 1])) { text += s[i + 1]; i += 2; continue; }
    if (c === '`') {
      let k = 1;
      while (s[i + k] === '`') k++;
      const end = findTicks(s, k, i + k, tickFail);
      if (end === -1) { text += s.slice(i, i + k); i += k; continue; }
      let v = s.slice(i + k, end);
      if (v.length > 2 && v[0] === ' ' && v[v.length - 1] === ' ') v = v.slice(1, -1);
      push({ t: 'code', v });
      i = end + k;
      continue;
    }
    if ((c === '*' || c === '_' || c === '~') && depth < MAX_DEPTH) {
      let r = 1;
      while (s[i + r] === c) r++;
      const opensOK = !isSpace(s[i + r]) && (c !== '_' || !isWord(s[i - 1]));
      let done = false;
      if (opensOK) {
        // Longest first: *** tries bold (with an italic inside) before italic.
        for (const len of r >= 2 ? [2, 1] : [1]) {
          const kind = EMPH[c][len - 1];
          if (!kind) continue;
          const start = i + len;
          const at = closers.find(c, len, start + (r - len) + 1);
          if (at === -1 || at <= start) continue;
          push({ t: kind, c: parseInline(s.slice(start, at), depth + 1) });
          // A longer opening run than used: the rest of it was inside.
          i = at + len;
          done = true;
          break;
        }
      }
      if (!done) { text += s.slice(i, i + r); i += r; }
      continue;
    }
    if (c === '[') {
      LINK.lastIndex = i;
      const m = LINK.exec(s);
      const href = m && m[1].length <= MAX_LINK_TEXT && m[2].length <= MAX_URL ? safeLink(m[2]) : '';
      if (m && href) {
        push({ t: 'a', href, c: depth < MAX_DEPTH ? parseInline(m[1], depth + 1) : [{ t: 'text', v: m[1] }] });
        i += m[0].length;
        continue;
      }
      text += c;
      i++;
      continue;
    }
    if ((c === 'h' || c === 'H') && !isWord(s[i - 1])) {
      BARE_URL.lastIndex = i;
      const m = BARE_URL.exec(s);
      if (m) {
        let raw = m[0].slice(0, MAX_URL);
        const cut = raw.match(TRAILING);
        if (cut) raw = raw.slice(0, -cut[0].length);
        const href = safeLink(raw);
        if (href) {
          push({ t: 'a', href, c: [{ t: 'text', v: raw }] });
          i += raw.length;
          continue;
        }
      }
    }
    if (c === '@' && !isWord(s[i - 1])) {
      MENTION.lastIndex = i;
      const m = MENTION.exec(s);
      if (m) {
        const name = m[1].replace(/[.-]+$/, '');
        push({ t: 'mention', v: name });
        i += 1 + name.length;
        continue;
      }
    }
    text += c;
    i++;
  }
  if (text) out.push({ t: 'text', v: text });
  return out;
}

/** The end of the next run of exactly k backticks at or after from, or -1 (remembered per k). */
function findTicks(s, k, from, fail) {
  if (fail.has(k) && from >= fail.get(k)) return -1;
  let pos = from;
  for (let q = s.indexOf('`', from); q !== -1; q = s.indexOf('`', q)) {
    meter.steps += q - pos + 1;
    pos = q;
    let r = 1;
    while (s[q + r] === '`') r++;
    meter.steps += r;
    if (r === k) return q;
    q += r;
  }
  meter.steps += s.length - pos;
  fail.set(k, Math.min(from, fail.get(k) ?? Infinity));
  return -1;
}

const BLOCK = new Set(['p', 'pre', 'quote', 'ul', 'ol']);

/** The text of parsed blocks or inline nodes without the markup: for notifications, announcements, titles. */
export function plainText(nodes) {
  let out = '';
  let prevBlock = false;
  for (const x of nodes ?? []) {
    const block = BLOCK.has(x.t);
    if (out && (block || prevBlock)) out += '\n';
    prevBlock = block;
    switch (x.t) {
      case 'text': case 'code': case 'pre': out += x.v; break;
      case 'mention': out += `@${x.v}`; break;
      case 'ul': case 'ol': out += x.items.map((it) => plainText(it)).join('\n'); break;
      default: out += plainText(x.c);
    }
  }
  return out;
}

/**
 * Splits text into pieces, marking the words that start with one of terms
 * (case-insensitive, as the server's prefix search matches them).
 * @param {string} text
 * @param {string[]} terms
 * @returns {{v: string, mark: boolean}[]}
 */
export function highlight(text, terms) {
  const words = (terms ?? []).map((t) => t.toLowerCase()).filter(Boolean);
  if (!words.length) return [{ v: text, mark: false }];
  const out = [];
  let last = 0;
  for (const m of text.matchAll(/[\p{L}\p{N}_]+/gu)) {
    const w = m[0].toLowerCase();
    const term = words.find((t) => w.startsWith(t));
    if (!term) continue;
    if (m.index > last) out.push({ v: text.slice(last, m.index), mark: false });
    out.push({ v: text.slice(m.index, m.index + term.length), mark: true });
    last = m.index + term.length;
  }
  if (last < text.length) out.push({ v: text.slice(last), mark: false });
  return out;
}

/** The words of a search query, as highlight() takes them. */
export function searchTerms(q) {
  return [...String(q ?? '').matchAll(/[\p{L}\p{N}_]+/gu)].map((m) => m[0]);
}
