// Unit tests of the Markdown subset (web/app/markdown.js): what each piece of
// syntax parses to, that hostile input stays text (no javascript: or data:
// link, no HTML), and that emphasis bombs parse in time linear in their size.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { parse, parseInline, plainText, highlight, searchTerms, safeLink, MAX_DEPTH, meter } from '../../web/app/markdown.js';

const T = (v) => ({ t: 'text', v });

test('inline emphasis, strike, code', () => {
  assert.deepEqual(parseInline('a **b** c'), [T('a '), { t: 'b', c: [T('b')] }, T(' c')]);
  assert.deepEqual(parseInline('__b__ and _i_ and *i*'), [{ t: 'b', c: [T('b')] }, T(' and '), { t: 'i', c: [T('i')] }, T(' and '), { t: 'i', c: [T('i')] }]);
  assert.deepEqual(parseInline('~~gone~~'), [{ t: 's', c: [T('gone')] }]);
  assert.deepEqual(parseInline('***both***'), [{ t: 'b', c: [{ t: 'i', c: [T('both')] }] }]);
  assert.deepEqual(parseInline('*a **b** c*'), [{ t: 'i', c: [T('a '), { t: 'b', c: [T('b')] }, T(' c')] }]);
  assert.deepEqual(parseInline('`a *b* <i>`'), [{ t: 'code', v: 'a *b* <i>' }]);
  assert.deepEqual(parseInline('`` a ` b ``'), [{ t: 'code', v: 'a ` b' }]);
});

test('markers that do not open or close stay text', () => {
  for (const s of ['2 * 3 * 4', 'snake_case_name', '~single~', '** not bold **', '*unclosed', 'a `tick', 'a__init__b is _ok']) {
    const out = parseInline(s);
    assert.equal(plainText(out), s, s);
  }
  assert.deepEqual(parseInline('snake_case_name'), [T('snake_case_name')]);
  assert.deepEqual(parseInline('2 * 3 * 4'), [T('2 * 3 * 4')]);
  assert.deepEqual(parseInline('\\*not\\* italic'), [T('*not* italic')]);
});

test('links: http, https and mailto only', () => {
  assert.deepEqual(parseInline('see [the docs](https://example.com/a?b=1)'),
    [T('see '), { t: 'a', href: 'https://example.com/a?b=1', c: [T('the docs')] }]);
  assert.deepEqual(parseInline('[mail](mailto:bob@example.com)'), [{ t: 'a', href: 'mailto:bob@example.com', c: [T('mail')] }]);
  assert.deepEqual(parseInline('go to https://example.com/x.'), [T('go to '), { t: 'a', href: 'https://example.com/x', c: [T('https://example.com/x')] }, T('.')]);
  for (const bad of ['[x](javascript:alert(1))', '[x](JaVaScRiPt:alert(1))', '[x](data:text/html,<b>x</b>)', '[x](vbscript:msgbox)',
    '[x](//evil.example)', '[x](/relative)', '[x](java\tscript:alert(1))', 'javascript:alert(1)', '[x](file:///etc/passwd)']) {
    const out = parseInline(bad);
    assert.ok(!JSON.stringify(out).includes('"t":"a"'), `${bad} must not become a link: ${JSON.stringify(out)}`);
    assert.equal(plainText(out), bad.replace(/\\(.)/g, '$1'));
  }
  assert.equal(safeLink('HTTPS://EXAMPLE.COM'), 'https://example.com/');
  assert.equal(safeLink(' javascript:alert(1)'), '');
});

test('HTML stays text', () => {
  const s = '<script>alert(1)</script><img src=x onerror=alert(2)>';
  assert.deepEqual(parse(s), [{ t: 'p', c: [T(s)] }]);
});

test('mentions', () => {
  assert.deepEqual(parseInline('hi @bob, and @room.'), [T('hi '), { t: 'mention', v: 'bob' }, T(', and '), { t: 'mention', v: 'room' }, T('.')]);
  assert.deepEqual(parseInline('bob@example.com'), [T('bob@example.com')]);
});

test('blocks: paragraphs, code blocks, quotes, lists', () => {
  const text = 'first line\nsecond line\n\n```js\nlet a = **1**;\n<b>\n```\n> quoted *x*\n> more\n- one\n- **two**\n3. three\n4. four';
  assert.deepEqual(parse(text), [
    { t: 'p', c: [T('first line\nsecond line')] },
    { t: 'pre', v: 'let a = **1**;\n<b>' },
    { t: 'quote', c: [{ t: 'p', c: [T('quoted '), { t: 'i', c: [T('x')] }, T('\nmore')] }] },
    { t: 'ul', items: [[T('one')], [{ t: 'b', c: [T('two')] }]] },
    { t: 'ol', start: 3, items: [[T('three')], [T('four')]] },
  ]);
  assert.deepEqual(parse('```\nunclosed *x*'), [{ t: 'pre', v: 'unclosed *x*' }]);
  assert.deepEqual(parse('---'), [{ t: 'p', c: [T('---')] }]);
  assert.equal(plainText(parse(text)), 'first line\nsecond line\nlet a = **1**;\n<b>\nquoted x\nmore\none\ntwo\nthree\nfour');
});

test('nesting is bounded: deep emphasis turns into text past MAX_DEPTH', () => {
  const deep = `${'*_'.repeat(20)}x${'_*'.repeat(20)}`;
  let node = parseInline(deep);
  let depth = 0;
  while (node.length && node[0].c) { node = node[0].c; depth++; }
  assert.ok(depth <= MAX_DEPTH, `depth ${depth}`);
  assert.equal(plainText(parseInline('> '.repeat(50) + 'x')), '> '.repeat(50) + 'x');
  assert.ok(parse('> '.repeat(50) + 'x').length === 1);
});

test('emphasis bombs cost work linear in their length', () => {
  // The parser's step count (markdown.js meter) for 2 k and 16 k repetitions
  // of each bomb: a quadratic parser does 64× the work for the bigger one, a
  // linear one about 8×.
  const bombs = [
    (n) => '*a'.repeat(n),
    (n) => '**a'.repeat(n),
    (n) => '_a '.repeat(n),
    (n) => '`a``'.repeat(n),
    (n) => '``a`'.repeat(n),
    (n) => '[a'.repeat(n) + '](',
    (n) => '*_~~'.repeat(n) + 'x',
    (n) => '~~**__'.repeat(n) + '__**~~'.repeat(n),
    (n) => '*a **b '.repeat(n),
    (n) => 'https://a'.repeat(n),
    (n) => '> *a\n'.repeat(n),
    (n) => '- **a\n'.repeat(n),
  ];
  for (const bomb of bombs) {
    const steps = (s) => {
      meter.steps = 0;
      parse(s);
      return meter.steps;
    };
    const small = steps(bomb(2000));
    const big = steps(bomb(16000));
    const ratio = big / small;
    assert.ok(ratio < 12, `${JSON.stringify(bomb(3))}: 8× the input took ${ratio.toFixed(1)}× the steps (${small} → ${big})`);
  }
});

test('search highlighting marks word prefixes', () => {
  assert.deepEqual(highlight('Welcome, well met', ['wel']), [
    { v: 'Wel', mark: true }, { v: 'come, ', mark: false }, { v: 'wel', mark: true }, { v: 'l met', mark: false }]);
  assert.deepEqual(highlight('nothing here', ['zz']), [{ v: 'nothing here', mark: false }]);
  assert.deepEqual(searchTerms('welc "to" x-y'), ['welc', 'to', 'x', 'y']);
});
