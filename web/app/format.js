// Turns parsed Markdown (markdown.js) into DOM nodes with the DOM API only:
// every string of a message becomes a text node or an attribute value, links
// get an http/https/mailto href checked by the parser, and open in a new tab
// without opener or referrer. The same rendering serves the timeline, reply
// previews and search results (with the matched words marked).
import { h } from './dom.js';
import { parse, parseInline, highlight } from './markdown.js';

/**
 * @typedef {{me?: string, terms?: string[]}} FormatOptions
 * me: the signed-in user (their mentions get the class "me");
 * terms: search words whose prefix matches are wrapped in <mark>.
 */

/** Message text as block nodes (paragraphs, code, quotes, lists). @param {string} text @param {FormatOptions} [opts] */
export function formatBlocks(text, opts = {}) {
  return blocks(parse(text), opts);
}

/** One line of message text with inline formatting only, for previews. @param {string} text @param {FormatOptions} [opts] */
export function formatInline(text, opts = {}) {
  return inline(parseInline(text), opts);
}

function blocks(list, opts) {
  return list.map((b) => {
    switch (b.t) {
      case 'p': return h('p', {}, inline(b.c, opts));
      case 'pre': return h('pre', {}, h('code', {}, marked(b.v, opts)));
      case 'quote': return h('blockquote', {}, blocks(b.c, opts));
      case 'ul': return h('ul', {}, b.items.map((it) => h('li', {}, inline(it, opts))));
      case 'ol': return h('ol', { start: b.start !== 1 ? String(b.start) : null }, b.items.map((it) => h('li', {}, inline(it, opts))));
      default: return null;
    }
  });
}

function inline(list, opts) {
  return list.map((x) => {
    switch (x.t) {
      case 'text': return marked(x.v, opts);
      case 'code': return h('code', {}, marked(x.v, opts));
      case 'b': return h('strong', {}, inline(x.c, opts));
      case 'i': return h('em', {}, inline(x.c, opts));
      case 's': return h('del', {}, inline(x.c, opts));
      case 'a': return h('a', { href: x.href, target: '_blank', rel: 'noopener noreferrer nofollow' }, inline(x.c, opts));
      case 'mention': return h('span', { class: `mention${x.v.toLowerCase() === opts.me?.toLowerCase() || x.v === 'room' ? ' me' : ''}`, dataset: { user: x.v } },
        marked(`@${x.v}`, opts));
      default: return null;
    }
  });
}

/** Text with the search terms' matches in <mark>. */
function marked(text, opts) {
  if (!opts.terms?.length) return text;
  return highlight(text, opts.terms).map((p) => (p.mark ? h('mark', {}, p.v) : p.v));
}
