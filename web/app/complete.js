// @mention completion, the DOM-free part: where the "@word" being typed
// starts, which names match it, and the text after a choice. room.js shows
// the list; node tests in test/web run these.

const NAME_CHAR = /[A-Za-z0-9_.-]/;

/**
 * The mention being typed at caret: {start, prefix} where start is the index
 * of "@", or null when the caret is not right after "@" and name characters
 * (an e-mail address such as bob@example.com is not a mention).
 * @param {string} text
 * @param {number} caret
 */
export function mentionAt(text, caret) {
  let i = caret;
  while (i > 0 && NAME_CHAR.test(text[i - 1]) && caret - i < 32) i--;
  if (i === 0 || text[i - 1] !== '@') return null;
  const before = text[i - 2];
  if (before !== undefined && /[\p{L}\p{N}_]/u.test(before)) return null;
  return { start: i - 1, prefix: text.slice(i, caret) };
}

/**
 * Names matching prefix (case-insensitive): those starting with it first,
 * then those containing it, each group sorted; at most limit.
 * @param {Iterable<string>} names
 * @param {string} prefix
 */
export function matchNames(names, prefix, limit = 8) {
  const p = prefix.toLowerCase();
  const starts = [];
  const contains = [];
  for (const n of new Set(names)) {
    const l = n.toLowerCase();
    if (l.startsWith(p)) starts.push(n);
    else if (p && l.includes(p)) contains.push(n);
  }
  const byName = (a, b) => a.localeCompare(b);
  return [...starts.sort(byName), ...contains.sort(byName)].slice(0, limit);
}

/**
 * The text with the mention at {start, prefix} replaced by "@name ", and the
 * caret after it.
 * @param {string} text
 * @param {{start: number, prefix: string}} at
 * @param {string} name
 */
export function completeMention(text, at, name) {
  const end = at.start + 1 + at.prefix.length;
  const insert = `@${name} `;
  const rest = text.slice(end).replace(/^ /, '');
  return { text: text.slice(0, at.start) + insert + rest, caret: at.start + insert.length };
}
