/**
 * The real-engine tier: the real kubeadm, kubectl, kube-apiserver and etcd,
 * built from their Go modules by tests/engine/build-tools.sh (cached under
 * .cache/engine). Needs root and Go. `npm run test:engine`.
 */
const base = require("./jest.config.js");

/** @type {import('jest').Config} */
module.exports = {
    ...base,
    roots: ["<rootDir>/tests/engine"],
    testPathIgnorePatterns: ["/node_modules/"],
    maxWorkers: 1,
    // The first run builds the tools (about 10 minutes cold on 2 cores).
    testTimeout: 45 * 60 * 1000,
};
