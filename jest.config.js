/** Unit tests beside the code (*.spec.ts, in src and packages/NAME/src); integration tests under test (*.test.ts). */
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: {
    '^(\\.{1,2}/.*)\\.js$': '$1',
    // The workspace packages from their sources, as their own tests see them: no build between an edit and a
    // test run. Worker processes the tests spawn read the built packages (dist) through node_modules.
    '^@flashsale/contract$': '<rootDir>/packages/contract/src/index.ts',
    '^@flashsale/publisher$': '<rootDir>/packages/publisher/src/index.ts',
    '^@flashsale/publisher/nest$': '<rootDir>/packages/publisher/src/nest/index.ts',
  },
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true }] },
  setupFilesAfterEnv: ['<rootDir>/test/support/preload-nest.ts'],
  testTimeout: 30_000,
  // The chaos suite starts and stops its own servers and has its own config: npm run test:chaos.
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/chaos/'],
  testMatch: [
    '<rootDir>/src/**/*.spec.ts',
    '<rootDir>/packages/*/src/**/*.spec.ts',
    '<rootDir>/test/**/*.test.ts',
  ],
  // `npm run test:cov`: the worker's own code as run in this process (workers spawned as processes are not counted).
  collectCoverageFrom: ['<rootDir>/src/**/*.ts', '!<rootDir>/src/generated/**', '!**/*.spec.ts'],
  // A floor for the core folders, a little below what their unit tests alone reached when it was set.
  coverageThreshold: {
    './src/purchases/': { statements: 80, branches: 70, functions: 72, lines: 81 },
    './src/settlement/': { statements: 80, branches: 76, functions: 73, lines: 80 },
    './src/consumer/': { statements: 82, branches: 82, functions: 76, lines: 84 },
    './src/database/': { statements: 82, branches: 84, functions: 73, lines: 82 },
    './src/audit/': { statements: 80, branches: 65, functions: 72, lines: 82 },
  },
};
