/**
 * The node test environment, plus `__realProcess`: jest gives each test file
 * a copy of `process` whose events are not the real process's, while Node
 * reports unhandled promise rejections (how a Pulumi program's failed
 * registrations surface) on the real one. tests/harness.ts collects them
 * there for the duration of a run.
 */
const { TestEnvironment } = require("jest-environment-node");

class KubeadmPulumiEnvironment extends TestEnvironment {
    constructor(config, context) {
        super(config, context);
        this.global.__realProcess = process;
    }
}

module.exports = KubeadmPulumiEnvironment;
