import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** What this build is: the version in package.json and the Node running it (`--version`, flashsale_build_info). */
export interface BuildInfo {
  version: string;
  node: string;
}

const HERE = dirname(fileURLToPath(import.meta.url));
// src/observability when run from source (tests), dist/src/observability once built: package.json is two or
// three folders up.
const PACKAGE_JSON_CANDIDATES = [resolve(HERE, '../../package.json'), resolve(HERE, '../../../package.json')];

function packageVersion(): string {
  for (const candidate of PACKAGE_JSON_CANDIDATES) {
    try {
      const manifest = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string; version?: string };
      if (manifest.name === 'flashsale-worker' && manifest.version) return manifest.version;
    } catch (error) {
      // Not there (or not readable) from this layout: the next candidate is.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  return 'unknown';
}

export const BUILD_INFO: Readonly<BuildInfo> = Object.freeze({
  version: packageVersion(),
  node: process.version,
});
