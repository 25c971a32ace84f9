import 'reflect-metadata';
import { readCommandLine } from './command-line.js';
import { InvalidSettingsError, parseSettings, quotedValue, type Settings } from './config/settings.js';
import { redactCredentials } from './common/log-redaction.js';
import { tracesRequested, unknownTracesExporters } from './observability/tracing.js';

/**
 * Past the shutdown deadline the worker gives up on what is left and closes; this much more is allowed for that
 * before the process ends on its own.
 */
const SHUTDOWN_HARD_STOP_AFTER_DEADLINE_MS = 2000;

function readSettings(): Settings {
  try {
    const unknownExporters = unknownTracesExporters(process.env);
    if (unknownExporters.length > 0) {
      throw new InvalidSettingsError([
        `OTEL_TRACES_EXPORTER=${quotedValue(process.env.OTEL_TRACES_EXPORTER ?? '')}: unknown exporter ` +
          `${unknownExporters.map(quotedValue).join(', ')} (otlp, console or none)`,
      ]);
    }
    return parseSettings(process.env);
  } catch (error) {
    if (error instanceof InvalidSettingsError) {
      console.error(`flashsale-worker cannot start: ${error.message}`);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }
}

async function main(): Promise<void> {
  readCommandLine();
  const settings = readSettings();
  // Off unless OTEL_TRACES_EXPORTER asks for it; the SDK is loaded only then.
  const stopTracing = tracesRequested(process.env)
    ? (await import('./observability/tracing-sdk.js')).startTracingFromEnvironment(process.env)
    : undefined;
  // Loaded after the command line and the settings: --help, --version and a bad setting answer at once.
  const { startWorker } = await import('./worker.module.js');
  const worker = await startWorker(settings);
  const onSignal = (signal: NodeJS.Signals) => {
    // A second signal, or a shutdown stuck past its deadline, ends the process without acking anything more.
    const hardStopMs = settings.SHUTDOWN_DEADLINE_MS + SHUTDOWN_HARD_STOP_AFTER_DEADLINE_MS;
    setTimeout(() => {
      console.error(`flashsale-worker: shutdown did not finish within ${hardStopMs} ms`);
      process.exit(1);
    }, hardStopMs).unref();
    worker.stop(signal).then(
      async (code) => {
        // The spans of the last batches go out before the process does.
        await stopTracing?.().catch((error: Error) =>
          console.error(`flashsale-worker: sending the last spans failed: ${error.message}`),
        );
        process.exit(code);
      },
      (error: Error) => {
        console.error(
          `flashsale-worker: shutdown failed: ${redactCredentials(error.stack ?? error.message)}`,
        );
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
}

main().catch((error: Error) => {
  console.error(`flashsale-worker failed to start: ${redactCredentials(error.stack ?? error.message)}`);
  process.exit(1);
});
