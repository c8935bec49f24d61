/**
 * The sandbox-host tier: real Debian hosts (systemd + sshd in
 * systemd-nspawn, network namespaces) running the program's scripts over real
 * SSH. Needs root. `npm run test:hosts`.
 */
const base = require("./jest.config.js");

/** @type {import('jest').Config} */
module.exports = {
    ...base,
    roots: ["<rootDir>/tests/hosts"],
    testPathIgnorePatterns: ["/node_modules/"],
    // Hosts share one machine: run the files one after another.
    maxWorkers: 1,
    testTimeout: 15 * 60 * 1000,
};
