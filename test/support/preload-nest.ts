// Jest links CommonJS packages (nestjs-pino, @willsoto/nestjs-prometheus) before it evaluates the ES
// modules they require; loading NestJS's ES modules first lets those require() calls find them ready.
await import('@nestjs/common');
await import('@nestjs/core');
await import('@nestjs/microservices');
await import('@nestjs/terminus');
