#!/usr/bin/env node
/**
 * `npm test` runs this first: the fast tier checks the scripts with real
 * shellcheck and the PKI with real openssl. Without them whole groups of
 * tests would be skipped and the run would still look green, so it stops
 * here, saying what to install (KP_ALLOW_MISSING_TOOLS=1 runs the rest
 * anyway, after a warning that the run is partial).
 */
const { spawnSync } = require("child_process");

const TOOLS = {
    shellcheck: { debian: "apt-get install -y shellcheck", rhel: "dnf install -y ShellCheck (EPEL)", mac: "brew install shellcheck" },
    openssl: { debian: "apt-get install -y openssl", rhel: "dnf install -y openssl", mac: "brew install openssl" },
};

const missing = Object.keys(TOOLS).filter((t) => spawnSync("sh", ["-c", `command -v ${t}`]).status !== 0);
if (missing.length === 0) process.exit(0);
const lines = [
    `npm test needs ${missing.join(" and ")}, which ${missing.length === 1 ? "is" : "are"} not installed: the tests that check the`,
    "scripts and certificates with them would be skipped. Install:",
    ...missing.map((t) => `  ${t}: ${TOOLS[t].debian}   (RHEL family: ${TOOLS[t].rhel}; macOS: ${TOOLS[t].mac})`),
];
if (process.env.KP_ALLOW_MISSING_TOOLS === "1") {
    console.warn(["", "WARNING: this run is partial.", ...lines, ""].join("\n"));
    process.exit(0);
}
console.error(["", ...lines, "or run KP_ALLOW_MISSING_TOOLS=1 npm test to run the rest, knowing it is partial.", ""].join("\n"));
process.exit(1);
