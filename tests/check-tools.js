#!/usr/bin/env node
/**
 * `npm test` runs this first: the fast tier checks the scripts with real
 * shellcheck, the PKI with real openssl, and the workflows with real
 * actionlint, which Go builds once (tests/tools/build-actionlint.sh; Go is
 * not needed once the pinned binary is in .cache/actionlint). Without them whole groups of
 * tests would be skipped and the run would still look green, so it stops
 * here, saying what to install (KP_ALLOW_MISSING_TOOLS=1 runs the rest
 * anyway, after a warning that the run is partial).
 */
const { spawnSync } = require("child_process");

const TOOLS = {
    shellcheck: { debian: "apt-get install -y shellcheck", rhel: "dnf install -y ShellCheck (EPEL)", mac: "brew install shellcheck" },
    openssl: { debian: "apt-get install -y openssl", rhel: "dnf install -y openssl", mac: "brew install openssl" },
    go: { debian: "apt-get install -y golang-go (Go >= 1.25; or https://go.dev/dl/)", rhel: "dnf install -y golang", mac: "brew install go" },
};

const fs = require("fs");
const path = require("path");
/** The actionlint binary the build script pins, when it is already built (then Go is not needed). */
function actionlintCached() {
    const script = fs.readFileSync(path.join(__dirname, "tools", "build-actionlint.sh"), "utf8");
    const version = /^VERSION=(v[0-9.]+)$/m.exec(script)[1];
    return fs.existsSync(path.join(__dirname, "..", ".cache", "actionlint", version, "actionlint"));
}

const missing = Object.keys(TOOLS).filter((t) => spawnSync("sh", ["-c", `command -v ${t}`]).status !== 0 && !(t === "go" && actionlintCached()));
if (missing.length === 0) process.exit(0);
const lines = [
    `npm test needs ${missing.join(" and ")}, which ${missing.length === 1 ? "is" : "are"} not installed: the tests that check the`,
    "scripts, certificates and workflows with them would fail or be skipped. Install:",
    ...missing.map((t) => `  ${t}: ${TOOLS[t].debian}   (RHEL family: ${TOOLS[t].rhel}; macOS: ${TOOLS[t].mac})`),
];
if (process.env.KP_ALLOW_MISSING_TOOLS === "1") {
    console.warn(["", "WARNING: this run is partial.", ...lines, ""].join("\n"));
    process.exit(0);
}
console.error(["", ...lines, "or run KP_ALLOW_MISSING_TOOLS=1 npm test to run the rest, knowing it is partial.", ""].join("\n"));
process.exit(1);
