// Jest links CommonJS packages (nestjs-pino, @willsoto/nestjs-prometheus) before it evaluates the ES
// modules they require; loading NestJS's ES modules first lets those require() calls find them ready.
await import('@nestjs/common');
await import('@nestjs/core');
await import('@nestjs/microservices');
await import('@nestjs/terminus');

// Quiet tests: a passing run prints Jest's summary only. Nest's Logger writes nowhere unless a test spies on
// it (jest.spyOn(Logger.prototype, 'warn')) to read what it would have said; an app that installs its own
// logger (nestjs-pino, under LOG_LEVEL) replaces this for the rest of its file.
const { Logger } = await import('@nestjs/common');
Logger.overrideLogger(false);
