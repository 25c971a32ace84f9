#!/usr/bin/env node
// Runs Jest in ESM mode on a Node that can require() ES modules inside Jest (24.9 or newer): NestJS 12 is
// ESM-only, and CommonJS packages around it (nestjs-pino, @willsoto/nestjs-prometheus) require() it.
// `npm test` starts this through scripts/node24, which provides such a Node on machines whose own is older.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
if (major < 24 || (major === 24 && minor < 9)) {
  console.error(
    `The tests need Node 24.9 or newer (this is ${process.version}): run them with \`npm test\`, or \`scripts/node24 node scripts/run-jest.mjs\`.`,
  );
  process.exit(1);
}
const jest = join(dirname(require.resolve('jest/package.json')), 'bin', 'jest.js');
const child = spawn(
  process.execPath,
  ['--experimental-vm-modules', '--no-warnings=ExperimentalWarning', jest, ...process.argv.slice(2)],
  { stdio: 'inherit' },
);
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
