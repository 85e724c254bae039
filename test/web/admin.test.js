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
