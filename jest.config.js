/** @type {import('jest').Config} */
module.exports = {
    preset: "ts-jest",
    testEnvironment: "<rootDir>/tests/jest-environment.js",
    roots: ["<rootDir>/tests"],
    testMatch: ["**/*.test.ts"],
    // The sandbox-host tier boots real Debian hosts (root, minutes): `npm run test:hosts`;
    // the real-engine tier builds kubeadm and friends from Go modules: `npm run test:engine`;
    // the real-cluster tier runs real kubelets and containers on those hosts: `npm run test:cluster`.
    testPathIgnorePatterns: ["/node_modules/", "<rootDir>/tests/hosts/", "<rootDir>/tests/engine/", "<rootDir>/tests/cluster/"],
    // Mocked Pulumi programs resolve many promises; give slow CI machines room.
    testTimeout: 60000,
    transform: { "^.+\\.ts$": ["ts-jest", { diagnostics: { warnOnly: false } }] },
};
