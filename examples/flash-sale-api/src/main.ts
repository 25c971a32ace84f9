import 'reflect-metadata';
import { startApi } from './api.js';
import { InvalidApiSettingsError, parseApiSettings, type ApiSettings } from './settings.js';

function readSettings(): ApiSettings {
  try {
    return parseApiSettings(process.env);
  } catch (error) {
    if (!(error instanceof InvalidApiSettingsError)) throw error;
    console.error(`flash-sale-api cannot start: ${error.message}`);
    process.exit(78); // EX_CONFIG
  }
}

/** The password of every URL in `text` replaced by ***: a start-up error may quote RABBITMQ_URL. */
const redacted = (text: string) => text.replace(/\b([a-z][a-z0-9+.-]*:\/\/[^\s/:@]*:)[^\s/@]*@/gi, '$1***@');

/** Starts the API on HTTP_PORT; on SIGTERM or SIGINT it stops taking requests, answers those in flight, closes. */
async function main(): Promise<void> {
  const settings = readSettings();
  const { app, port } = await startApi(settings);
  // Nest's shutdown closes the HTTP server (requests in flight are answered) before the publisher.
  app.enableShutdownHooks(['SIGTERM', 'SIGINT']);
  console.log(`flash-sale-api listening on port ${port}, publishing to "${settings.PURCHASE_QUEUE}"`);
}

main().catch((error: Error) => {
  console.error(`flash-sale-api failed to start: ${redacted(error.stack ?? error.message)}`);
  process.exit(1);
});
