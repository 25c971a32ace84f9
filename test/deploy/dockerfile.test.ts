/** The Dockerfile, read as instructions grouped by stage (no Docker engine needed). */
import { describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { settingsSchema } from '../../src/config/settings.js';
import { WORKER_NODE_FLAGS } from '../../src/node-flags.js';

const ROOT = resolve(import.meta.dirname, '../..');

interface Instruction {
  keyword: string;
  args: string;
}

interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

function readInstructions(dockerfile: string): Instruction[] {
  return dockerfile
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const [keyword = '', ...rest] = line.split(/\s+/);
      return { keyword: keyword.toUpperCase(), args: rest.join(' ') };
    });
}

function readStages(dockerfile: string): Stage[] {
  const stages: Stage[] = [];
  for (const instruction of readInstructions(dockerfile)) {
    if (instruction.keyword === 'FROM') {
      const words = instruction.args.split(/\s+/).filter((word) => !word.startsWith('--platform'));
      stages.push({ from: words[0] ?? '', name: words[2], instructions: [] });
    } else {
      stages.at(-1)?.instructions.push(instruction);
    }
  }
  return stages;
}

const args = (stage: Stage, keyword: string) =>
  stage.instructions.filter((instruction) => instruction.keyword === keyword).map(({ args }) => args);

/** The JSON array of an exec-form instruction (after its options such as --interval=10s), or undefined. */
function execForm(args: string): string[] | undefined {
  const start = args.indexOf('[');
  if (start < 0 || /\S/.test(args.slice(0, start).replace(/--\S+|\bCMD\b/g, ''))) return undefined;
  const parsed: unknown = JSON.parse(args.slice(start));
  return Array.isArray(parsed) && parsed.every((item) => typeof item === 'string') ? parsed : undefined;
}

/** Whether a .dockerignore pattern (a plain path or directory name, as ours are) excludes `path`. */
function ignoredBy(patterns: string[], path: string): string | undefined {
  const normalised = path.replace(/^\.\//, '').replace(/\/$/, '');
  return patterns.find((pattern) => normalised === pattern || normalised.startsWith(`${pattern}/`));
}

const dockerfile = readFileSync(resolve(ROOT, 'Dockerfile'), 'utf8');
const stages = readStages(dockerfile);
const buildStage = stages[0]!;
const runtime = stages.at(-1)!;
const dockerignore = readFileSync(resolve(ROOT, '.dockerignore'), 'utf8')
  .split(/\r?\n/)
  .map((line) => line.trim())
  .filter((line) => line && !line.startsWith('#'));

describe('Dockerfile', () => {
  it('builds in one stage and runs from a second, fresh one', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(buildStage.name).toBeDefined();
    expect(runtime.from).not.toBe(buildStage.name);
    expect(args(runtime, 'COPY')).toContainEqual(
      expect.stringMatching(`^--from=${buildStage.name} /app/dist `),
    );
  });

  it('generates the Prisma client and compiles in the build stage', () => {
    const scripts = (
      JSON.parse(readFileSync(resolve(ROOT, 'package.json'), 'utf8')) as {
        scripts: Record<string, string>;
      }
    ).scripts;
    expect(args(buildStage, 'COPY')[0]).toBe('package.json package-lock.json ./');
    expect(args(buildStage, 'RUN')).toContainEqual(expect.stringMatching(/^npm ci\b(?!.*--omit)/));
    expect(args(buildStage, 'RUN')).toContain('npm run build');
    // `npm run build` is what runs prisma generate: make sure it still does.
    expect(scripts.build).toMatch(/npm run prisma:generate/);
    expect(scripts['prisma:generate']).toMatch(/\bprisma generate\b/);
  });

  it('installs production dependencies only in the final stage', () => {
    const installs = args(runtime, 'RUN').filter((run) => /\bnpm (ci|install|i)\b/.test(run));
    expect(installs).toHaveLength(1);
    expect(installs[0]).toMatch(/^npm ci --omit=dev --omit=optional\b/);
    expect(args(runtime, 'COPY')).toContain('package.json package-lock.json ./');
  });

  it('installs exactly what package-lock.json lists, in every stage', () => {
    const installs = stages
      .flatMap((stage) => args(stage, 'RUN'))
      .filter((run) => /\bnpm (ci|install|i)\b/.test(run));
    expect(installs.length).toBeGreaterThanOrEqual(2);
    for (const install of installs) expect(install).toMatch(/^npm ci\b/);
  });

  it('needs no frontend image from a registry: no `# syntax=` directive', () => {
    expect(dockerfile).not.toMatch(/^#\s*syntax\s*=/im);
  });

  it('builds and runs on Node 24 LTS, the Node of package.json engines and .nvmrc', () => {
    const imageArgument = /^ARG NODE_IMAGE=(\S+)$/m.exec(dockerfile)?.[1];
    expect(imageArgument).toMatch(/^node:24(\.\d+)*-/);
    for (const stage of stages) expect(stage.from).toBe('${NODE_IMAGE}');
    const { engines } = JSON.parse(readFileSync(resolve(ROOT, 'package.json'), 'utf8')) as {
      engines: { node: string };
    };
    expect(engines.node).toMatch(/^>=24(\.\d+)*$/);
    expect(readFileSync(resolve(ROOT, '.nvmrc'), 'utf8').trim()).toBe('24');
  });

  it('keeps a Node binary out of the dependencies: production installs bring none', () => {
    const manifest = JSON.parse(readFileSync(resolve(ROOT, 'package.json'), 'utf8')) as Record<
      string,
      Record<string, string> | undefined
    >;
    const kinds = ['dependencies', 'devDependencies', 'optionalDependencies', 'peerDependencies'];
    const nodeBinaries = kinds.flatMap((kind) =>
      Object.keys(manifest[kind] ?? {}).filter((name) => /^node(-\w+)*-(x64|arm64)$|^node$/.test(name)),
    );
    expect(nodeBinaries).toEqual([]);
  });

  it('ships the compiled worker, the migrations and package.json (for "type": "module")', () => {
    const copies = args(runtime, 'COPY');
    expect(copies).toContainEqual(expect.stringMatching(/^--from=\S+ \/app\/dist \.\/dist$/));
    expect(copies).toContainEqual('prisma ./prisma');
    expect(copies).toContainEqual(expect.stringMatching(/^package\.json /));
  });

  it('runs as a non-root user in production mode', () => {
    const user = args(runtime, 'USER').at(-1);
    expect(user).toBeDefined();
    expect(user).not.toMatch(/^(root|0)(:|$)/);
    expect(args(runtime, 'ENV')).toContainEqual(expect.stringMatching(/\bNODE_ENV=production\b/));
  });

  it('starts node directly with an exec-form CMD, so SIGTERM reaches the worker', () => {
    const command = execForm(args(runtime, 'CMD').at(-1) ?? '');
    // start.js replaces itself with node running main.js under the worker's flags: still PID 1.
    expect(command).toEqual(['node', 'dist/src/start.js']);
    expect(args(runtime, 'ENTRYPOINT')).toEqual([]);
    expect(args(runtime, 'STOPSIGNAL')).toEqual(['SIGTERM']);
    expect(existsSync(resolve(ROOT, 'src/start.ts'))).toBe(true);
  });

  it('exposes the default HTTP port of the settings', () => {
    expect(args(runtime, 'EXPOSE')).toEqual([String(settingsSchema.parse({}).HTTP_PORT)]);
  });

  it('copies only files that exist and that .dockerignore lets into the build context', () => {
    const sources = stages
      .flatMap((stage) => args(stage, 'COPY'))
      .filter((copy) => !copy.startsWith('--from='))
      .flatMap((copy) => copy.split(/\s+/).slice(0, -1));
    expect(sources.length).toBeGreaterThan(0);
    for (const source of sources) {
      expect({ source, exists: existsSync(resolve(ROOT, source)) }).toEqual({ source, exists: true });
      expect({ source, ignoredBy: ignoredBy(dockerignore, source) }).toEqual({
        source,
        ignoredBy: undefined,
      });
    }
  });

  it('keeps local builds, dependencies and secrets out of the build context', () => {
    for (const path of ['node_modules', 'dist', 'src/generated', '.env', '.git', '.tools']) {
      expect({ path, ignoredBy: ignoredBy(dockerignore, path) }).toEqual({ path, ignoredBy: path });
    }
  });
});

describe('Dockerfile HEALTHCHECK', () => {
  const healthcheck = args(runtime, 'HEALTHCHECK').at(-1) ?? '';
  const command = execForm(healthcheck.replace(/^(--\S+\s+)*CMD\s+/, ''));

  /** Runs the HEALTHCHECK command (node without curl) against a server answering /health with `status`. */
  async function runHealthcheck(status: number): Promise<{ exitCode: number | null; paths: string[] }> {
    const paths: string[] = [];
    const server = createServer((request, response) => {
      paths.push(request.url ?? '');
      response.writeHead(status).end();
    });
    await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
    try {
      const port = (server.address() as AddressInfo).port;
      const [, ...nodeArgs] = command ?? [];
      const child = spawn(process.execPath, nodeArgs, {
        env: { ...process.env, HTTP_PORT: String(port) },
        stdio: 'ignore',
      });
      const exitCode = await new Promise<number | null>((exited) => child.on('exit', exited));
      return { exitCode, paths };
    } finally {
      await new Promise((closed) => server.close(closed));
    }
  }

  it('is an exec-form node command, since the slim image has no curl', () => {
    expect(command?.[0]).toBe('node');
  });

  it('passes while /health on HTTP_PORT answers 200', async () => {
    expect(await runHealthcheck(200)).toEqual({ exitCode: 0, paths: ['/health'] });
  });

  it('fails while /health answers an error', async () => {
    expect(await runHealthcheck(503)).toEqual({ exitCode: 1, paths: ['/health'] });
  });

  it('starts the worker through the same launcher with npm start, the Node flags declared only in node-flags.ts', () => {
    const packageJson = JSON.parse(readFileSync(resolve(ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    const start = packageJson.scripts.start?.split(/\s+/) ?? [];
    expect(start.at(-1)).toBe('dist/src/start.js');
    expect(WORKER_NODE_FLAGS.length).toBeGreaterThan(0);
    for (const flag of WORKER_NODE_FLAGS) {
      expect({ flag, inStart: start.includes(flag) }).toEqual({ flag, inStart: false });
      expect({ flag, inDockerfile: dockerfile.includes(flag) }).toEqual({ flag, inDockerfile: false });
    }
  });
});
