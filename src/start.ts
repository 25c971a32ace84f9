/**
 * Starts the worker under its Node flags (node-flags.ts): `node dist/src/start.js [options]` becomes
 * `node <flags> <this node's own options> dist/src/main.js [options]` in the same process (execve): the same
 * PID, so SIGTERM still reaches the worker itself, and no launcher stays resident beside it.
 */
import { join } from 'node:path';
import { WORKER_NODE_FLAGS } from './node-flags.js';

if (!process.execve) throw new Error('starting the worker needs process.execve (POSIX, Node 23.11 or newer)');
process.execve(process.execPath, [
  process.execPath,
  ...WORKER_NODE_FLAGS,
  ...process.execArgv,
  join(import.meta.dirname, 'main.js'),
  ...process.argv.slice(2),
]);
