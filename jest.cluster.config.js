/**
 * The real-cluster tier: real containerd, runc, kubelet, kubeadm, control-plane
 * images and CNI on sandbox hosts, all built here from their Go modules by
 * tests/cluster/build.sh (cached under .cache/cluster). Needs root and Go.
 * `npm run test:cluster`.
 */
const base = require("./jest.config.js");

/** @type {import('jest').Config} */
module.exports = {
    ...base,
    roots: ["<rootDir>/tests/cluster"],
    // `*.tier.ts`, not `*.test.ts`: the default `npm test` (roots: tests/) must
    // not pick this tier up, and jest.config.js is not this tier's to edit.
    testMatch: ["**/*.tier.ts"],
    testPathIgnorePatterns: ["/node_modules/"],
    maxWorkers: 1,
    // A cold build of every component takes about 30 minutes on 2 cores.
    testTimeout: 60 * 60 * 1000,
};
