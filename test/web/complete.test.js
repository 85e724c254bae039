// Unit tests of @mention completion (web/app/complete.js).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { mentionAt, matchNames, completeMention } from '../../web/app/complete.js';

test('the mention being typed', () => {
  assert.deepEqual(mentionAt('hi @bo', 6), { start: 3, prefix: 'bo' });
  assert.deepEqual(mentionAt('@', 1), { start: 0, prefix: '' });
  assert.deepEqual(mentionAt('(@al', 4), { start: 1, prefix: 'al' });
  assert.equal(mentionAt('mail bob@exa', 12), null, 'an e-mail address');
  assert.equal(mentionAt('hi @bob there', 13), null, 'the caret is past it');
  assert.equal(mentionAt('no at here', 5), null);
});

test('matching names: prefix first, then substring, bounded', () => {
  const names = ['bob', 'Bobby', 'alice', 'jimbo', 'carol', 'bob'];
  assert.deepEqual(matchNames(names, 'bo'), ['bob', 'Bobby', 'jimbo']);
  assert.deepEqual(matchNames(names, ''), ['alice', 'bob', 'Bobby', 'carol', 'jimbo']);
  assert.deepEqual(matchNames(names, 'zz'), []);
  assert.equal(matchNames(Array.from({ length: 50 }, (_, i) => `u${i}`), 'u', 8).length, 8);
});

test('completing replaces the prefix and leaves one space', () => {
  const at = mentionAt('hi @bo and', 6);
  assert.deepEqual(completeMention('hi @bo and', at, 'bob'), { text: 'hi @bob and', caret: 8 });
  assert.deepEqual(completeMention('@', { start: 0, prefix: '' }, 'alice'), { text: '@alice ', caret: 7 });
});
