import { type DynamicModule, Global, Module } from '@nestjs/common';
import type { Settings } from './settings.js';

/** Injection token of the validated settings. */
export const SETTINGS = Symbol('SETTINGS');

/** Makes the settings parsed at start-up (see main.ts) injectable everywhere. */
@Global()
@Module({})
export class ConfigurationModule {
  static forRoot(settings: Settings): DynamicModule {
    return {
      module: ConfigurationModule,
      providers: [{ provide: SETTINGS, useValue: Object.freeze({ ...settings }) }],
      exports: [SETTINGS],
    };
  }
}
