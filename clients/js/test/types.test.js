// index.d.ts against a TypeScript user's code: test/types/node-ws.ts passes
// the ws package's WebSocket (what the README tells Node 20 users to do) and
// must compile under --strict with the TypeScript version pinned in
// package-lock.json. It imports '@sori/client' by name, as an installed
// package would be (a package may import itself through its exports).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

test('index.d.ts accepts the ws WebSocket under tsc --strict', () => {
  const run = spawnSync(process.execPath, [tsc, '-p', path.join(here, 'types', 'tsconfig.json')], { encoding: 'utf8' });
  assert.equal(run.status, 0, `tsc failed:\n${run.stdout}${run.stderr}`);
});
