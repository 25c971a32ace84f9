// Preloaded by the npm scripts that run the worker or its tools (`node --import ./scripts/env-file.mjs ...`):
// reads settings from .env in the working directory when there is one (see .env.example). Variables already
// set in the environment win. The image and the orchestrators set the environment themselves and skip this.
import { existsSync } from 'node:fs';

if (existsSync('.env')) process.loadEnvFile('.env');
