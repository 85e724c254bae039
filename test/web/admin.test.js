// Unit test of what the member list offers (web/app/admin.js allowedActions),
// against the rights docs/api.md gives: admins kick members, owners kick
// admins and members and change anyone's role, nobody acts on themselves.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { allowedActions } from '../../web/app/admin.js';

test('member actions follow the roles', () => {
  const m = (username, role) => ({ username, role });
  assert.deepEqual(allowedActions('member', m('bob', 'member'), 'me'), { kick: false, roles: [] });
  assert.deepEqual(allowedActions('admin', m('bob', 'member'), 'me'), { kick: true, roles: [] });
  assert.deepEqual(allowedActions('admin', m('bob', 'admin'), 'me'), { kick: false, roles: [] });
  assert.deepEqual(allowedActions('admin', m('bob', 'owner'), 'me'), { kick: false, roles: [] });
  assert.deepEqual(allowedActions('owner', m('bob', 'member'), 'me'), { kick: true, roles: ['admin', 'owner'] });
  assert.deepEqual(allowedActions('owner', m('bob', 'admin'), 'me'), { kick: true, roles: ['member', 'owner'] });
  assert.deepEqual(allowedActions('owner', m('bob', 'owner'), 'me'), { kick: false, roles: ['member', 'admin'] });
  assert.deepEqual(allowedActions('owner', m('me', 'owner'), 'me'), { kick: false, roles: [] });
});

test('server-admin page: sparklines end at the right edge, scaled to the largest value; invite links', async () => {
  const { sparkPath, inviteLink, HISTORY } = await import('../../web/app/serveradmin.js');
  assert.equal(sparkPath([], 120, 30), '');
  const step = 120 / (HISTORY - 1);
  assert.equal(sparkPath([0, 5, 10], 120, 30), `M${(120 - 2 * step).toFixed(1)},30.0 L${(120 - step).toFixed(1)},15.0 L120.0,0.0`);
  assert.equal(sparkPath([0, 0], 120, 30).endsWith('L120.0,30.0'), true, 'all zeros stay on the floor (the scale is at least 1)');
  const full = sparkPath(Array.from({ length: HISTORY }, (_, i) => i), 120, 30);
  assert.ok(full.startsWith('M0.0,'), full.slice(0, 12));
  assert.equal(inviteLink({ code: 'abc' }, 'http://127.0.0.1:7700'), 'http://127.0.0.1:7700/#/invite/abc');
  assert.equal(inviteLink({ code: 'abc', url: 'https://chat.example/#/invite/abc' }, 'http://x'), 'https://chat.example/#/invite/abc');
  assert.equal(inviteLink({ code: 'a/b', url: 'javascript:alert(1)' }, 'http://x'), 'http://x/#/invite/a%2Fb', 'only http(s) links from the server');
});
