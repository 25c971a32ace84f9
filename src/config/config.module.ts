import { type DynamicModule, Global, Module } from '@nestjs/common';
import { ShutdownSignal } from '../common/shutdown-signal.js';
import type { Settings } from './settings.js';

/** Injection token of the validated settings. */
export const SETTINGS = Symbol('SETTINGS');

/** Makes the settings parsed at start-up (see main.ts), and the worker's one shutdown signal, injectable everywhere. */
@Global()
@Module({})
export class ConfigurationModule {
  static forRoot(settings: Settings): DynamicModule {
    return {
      module: ConfigurationModule,
      providers: [
        { provide: SETTINGS, useValue: Object.freeze({ ...settings }) },
        { provide: ShutdownSignal, useValue: new ShutdownSignal() },
      ],
      exports: [SETTINGS, ShutdownSignal],
    };
  }
}
