// Builds the server once per `npm test` run, before the test files start
// (each runs in its own process and would otherwise build it again).
import { buildServer } from './harness.js';

if (!process.env.SORI_BIN) buildServer();
