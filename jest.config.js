/** Jest runs every package's tests from TypeScript sources (ESM, ts-jest). */
import { existsSync } from 'node:fs';
const pkgs = ['oci', 'parser', 'snapshotter', 'registry-client', 'builder', 'exporter', 'cache', 'testkit', 'cli'];
const moduleNameMapper = { '^(\\.{1,2}/.*)\\.js$': '$1' };
for (const p of pkgs) moduleNameMapper[`^@hoist/${p}$`] = `<rootDir>/packages/${p}/src/index.ts`;
moduleNameMapper['^@hoist/builder/reclaim$'] = '<rootDir>/packages/builder/src/sandbox/reclaim.ts';
export default {
  // node, plus removal of the temp dirs the test helpers register (scripts/jest-environment.mjs)
  testEnvironment: '<rootDir>/scripts/jest-environment.mjs',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper,
  // a package without tests yet has no test/ folder in git
  roots: pkgs.filter((p) => existsSync(`packages/${p}/test`)).map((p) => `<rootDir>/packages/${p}/test`),
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: '<rootDir>/tsconfig.test.json' }],
  },
  testTimeout: 120000,
};
