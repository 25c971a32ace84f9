/**
 * The chaos suite (`npm run test:chaos`): real worker processes, a private broker and database that the
 * tests stop and start. Long-running by design; CHAOS_PURCHASES sets its size (default 50000).
 */
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true }] },
  testTimeout: 60 * 60_000,
  testMatch: ['<rootDir>/test/chaos/**/*.test.ts'],
};
