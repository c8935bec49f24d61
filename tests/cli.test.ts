/**
 * `npm run up | preview | destroy | kubeconfig | pulumi` (components/cli/):
 * driven against a fake `pulumi` on PATH that records every call's argv and
 * the environment it was given (the real CLI cannot be had here, and tests
 * must not need it). Covers the backend choice, stack select vs init, the
 * passphrase check and its message, arguments passed through, and the
 * kubeconfig file (mode 0600, exact content, never on stdout).
 */
import { spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { CliContext, main, showUrl, findPulumi } from "../components/cli/pulumi";

const REPO = path.join(__dirname, "..");

/** The fake CLI: a Node script that logs one JSON line per call and behaves as the FAKE_PULUMI_* variables say. */
const FAKE_PULUMI = `#!/usr/bin/env node
const fs = require("fs");
const path = require("path");
const crypto = require("crypto");
const argv = process.argv.slice(2);
const env = process.env;
const sha = (v) => (v === undefined ? null : crypto.createHash("sha256").update(v).digest("hex"));
fs.appendFileSync(env.FAKE_PULUMI_LOG, JSON.stringify({
  argv, cwd: process.cwd(),
  backend: env.PULUMI_BACKEND_URL === undefined ? null : env.PULUMI_BACKEND_URL,
  passphraseSha: sha(env.PULUMI_CONFIG_PASSPHRASE),
  passphraseFile: env.PULUMI_CONFIG_PASSPHRASE_FILE === undefined ? null : env.PULUMI_CONFIG_PASSPHRASE_FILE,
}) + "\\n");
const stacksFile = env.FAKE_PULUMI_STACKS;
const stacks = fs.existsSync(stacksFile) ? fs.readFileSync(stacksFile, "utf8").split("\\n").filter(Boolean) : [];
const [a, b, c] = argv;
if (a === "whoami") {
  if (env.FAKE_PULUMI_WHOAMI_STDERR) { process.stderr.write(env.FAKE_PULUMI_WHOAMI_STDERR + "\\n"); process.exit(1); }
  if (env.FAKE_PULUMI_WHOAMI) { console.log(JSON.stringify({ user: "alice", url: env.FAKE_PULUMI_WHOAMI, organizations: [] })); process.exit(0); }
  console.error("error: PULUMI_ACCESS_TOKEN must be set for login during non-interactive CLI sessions");
  process.exit(255);
}
if (a === "stack" && b === "select") {
  if (stacks.includes(c)) process.exit(0);
  console.error("error: no stack named '" + c + "' found");
  process.exit(255);
}
if (a === "stack" && b === "init") {
  fs.appendFileSync(stacksFile, c + "\\n");
  if (argv.includes("passphrase")) fs.appendFileSync(path.join(process.cwd(), "Pulumi." + c + ".yaml"), "encryptionsalt: v1:c2FsdA==:v1:fake\\n");
  console.log("Created stack '" + c + "'");
  process.exit(0);
}
if (a === "stack" && b === "output" && c === "kubeconfig" && argv.includes("--show-secrets")) {
  if (!fs.existsSync(env.FAKE_PULUMI_KUBECONFIG)) { console.error("error: current stack does not have output property 'kubeconfig'"); process.exit(255); }
  // Like the real CLI (checked with pulumi v3.248.0): the value, then a newline.
  process.stdout.write(fs.readFileSync(env.FAKE_PULUMI_KUBECONFIG, "utf8") + "\\n");
  process.exit(0);
}
process.exit(Number(env.FAKE_PULUMI_EXIT || 0));
`;

interface Call {
    argv: string[];
    cwd: string;
    backend: string | null;
    passphraseSha: string | null;
    passphraseFile: string | null;
}

const PASSPHRASE = `passphrase-marker-${crypto.randomBytes(8).toString("hex")}`;
const sha = (v: string) => crypto.createHash("sha256").update(v).digest("hex");
const KUBE_MARKER = `client-key-data-marker-${crypto.randomBytes(8).toString("hex")}`;
const KUBECONFIG = [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- cluster: {server: 'https://10.0.0.100:6443', certificate-authority-data: Q0E=}",
    "  name: kubeadm-cluster",
    "users:",
    `- name: admin`,
    `  user: {client-certificate-data: Q0VSVA==, client-key-data: ${KUBE_MARKER}}`,
    "",
].join("\n");

let tmp = "";
let root = "";
let bin = "";
let log = "";

beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "kp-cli-"));
    root = path.join(tmp, "project");
    bin = path.join(tmp, "bin");
    fs.mkdirSync(root);
    fs.mkdirSync(bin);
    fs.mkdirSync(path.join(tmp, "home"));
    fs.copyFileSync(path.join(REPO, "Pulumi.yaml"), path.join(root, "Pulumi.yaml"));
    fs.copyFileSync(path.join(REPO, "Pulumi.dev.yaml"), path.join(root, "Pulumi.dev.yaml"));
    fs.writeFileSync(path.join(bin, "pulumi"), FAKE_PULUMI, { mode: 0o755 });
    fs.writeFileSync(path.join(tmp, "kubeconfig.out"), KUBECONFIG);
    log = path.join(tmp, "calls.jsonl");
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** PATH with the fake first and no real pulumi (nor npm's node_modules/.bin, which the wrapper skips anyway). */
const basePath = () => [bin, ...(process.env["PATH"] ?? "").split(path.delimiter).filter((d) => d && !fs.existsSync(path.join(d, "pulumi")))].join(path.delimiter);

function env(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
    const e: NodeJS.ProcessEnv = {
        PATH: basePath(),
        HOME: path.join(tmp, "home"),
        FAKE_PULUMI_LOG: log,
        FAKE_PULUMI_STACKS: path.join(tmp, "stacks"),
        FAKE_PULUMI_KUBECONFIG: path.join(tmp, "kubeconfig.out"),
        ...extra,
    };
    for (const k of Object.keys(e)) if (e[k] === undefined) delete e[k];
    return e;
}

const existingStacks = (...names: string[]) => fs.writeFileSync(path.join(tmp, "stacks"), names.map((n) => `${n}\n`).join(""));
const calls = (): Call[] => (fs.existsSync(log) ? fs.readFileSync(log, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as Call) : []);
const commands = () => calls().map((c) => c.argv.join(" "));

async function runCli(args: string[], e: NodeJS.ProcessEnv, cwd = tmp) {
    const out: string[] = [];
    const err: string[] = [];
    const ctx: CliContext = { root, env: e, cwd, out: (l) => out.push(l), err: (l) => err.push(l) };
    const code = await main(args, ctx);
    return { code, out: out.join("\n"), err: err.join("\n") };
}

describe("backend choice", () => {
    test("PULUMI_BACKEND_URL set: used as is, no whoami, nothing overridden", async () => {
        existingStacks("dev");
        const r = await runCli(["up", "--yes"], env({ PULUMI_BACKEND_URL: "s3://state-bucket/kubeadm?region=eu-west-1", PULUMI_CONFIG_PASSPHRASE: PASSPHRASE }));
        expect(r.code).toBe(0);
        expect(commands()).toEqual(["stack select dev --non-interactive", "up --yes --stack dev"]);
        expect(calls().every((c) => c.backend === "s3://state-bucket/kubeadm?region=eu-west-1")).toBe(true);
        expect(r.err).toContain("backend: s3://state-bucket/kubeadm?… (PULUMI_BACKEND_URL is set)");
        expect(fs.existsSync(path.join(root, ".pulumi-state"))).toBe(false);
    });

    test("nothing chosen (whoami fails): a project-local file backend, only in the child's environment", async () => {
        const r = await runCli(["preview", "--diff"], env({ PULUMI_CONFIG_PASSPHRASE: PASSPHRASE }));
        expect(r.code).toBe(0);
        const local = `file://${root}/.pulumi-state`;
        expect(commands()).toEqual([
            "whoami --json --non-interactive",
            "stack select dev --non-interactive",
            "stack init dev --non-interactive --secrets-provider passphrase",
            "preview --diff --stack dev",
        ]);
        expect(calls()[0].backend).toBeNull();
        expect(calls().slice(1).every((c) => c.backend === local)).toBe(true);
        expect(calls().every((c) => c.cwd === root)).toBe(true);
        const st = fs.statSync(path.join(root, ".pulumi-state"));
        expect(st.isDirectory()).toBe(true);
        expect(st.mode & 0o077).toBe(0);
        expect(r.err).toContain(`backend: ${local} (no backend chosen yet: PULUMI_BACKEND_URL is unset and you are not logged in`);
        expect(r.err).toContain("stack: dev (created with the passphrase secrets provider: commit its encryptionsalt line in Pulumi.dev.yaml)");
        // The user's global login (~/.pulumi) was never touched: no `pulumi login` ran.
        expect(commands().some((c) => c.startsWith("login"))).toBe(false);
    });

    test("logged in to Pulumi Cloud (whoami works): that backend, no passphrase needed, stack created with the service's secrets", async () => {
        const r = await runCli(["up"], env({ FAKE_PULUMI_WHOAMI: "https://api.pulumi.com" }));
        expect(r.code).toBe(0);
        expect(commands()).toEqual(["whoami --json --non-interactive", "stack select dev --non-interactive", "stack init dev --non-interactive", "up --stack dev"]);
        expect(calls().every((c) => c.backend === null)).toBe(true);
        expect(r.err).toContain("backend: https://api.pulumi.com (you are logged in to it, says `pulumi whoami`");
        expect(fs.existsSync(path.join(root, ".pulumi-state"))).toBe(false);
    });

    test("logged in to a self-managed backend (pulumi login --local): the passphrase is needed", async () => {
        const r = await runCli(["up"], env({ FAKE_PULUMI_WHOAMI: "file://~" }));
        expect(r.code).toBe(2);
        expect(r.err).toContain("needs a passphrase");
        expect(commands()).toEqual(["whoami --json --non-interactive"]);
    });

    test("project-local state from an earlier run wins over a later login elsewhere (its stacks would be lost)", async () => {
        fs.mkdirSync(path.join(root, ".pulumi-state", ".pulumi"), { recursive: true });
        existingStacks("dev");
        const r = await runCli(["destroy"], env({ FAKE_PULUMI_WHOAMI: "https://api.pulumi.com", PULUMI_CONFIG_PASSPHRASE: PASSPHRASE }));
        expect(r.code).toBe(0);
        expect(commands()).toEqual(["stack select dev --non-interactive", "destroy --stack dev"]);
        expect(calls().every((c) => c.backend === `file://${root}/.pulumi-state`)).toBe(true);
        expect(r.err).toContain("(the project-local state in .pulumi-state/ from an earlier run; set PULUMI_BACKEND_URL to use another backend)");
    });

    test("the npm devDependency's CLI that cannot download itself: says so instead of guessing a backend", async () => {
        fs.rmSync(path.join(bin, "pulumi"));
        fs.mkdirSync(path.join(root, "node_modules", ".bin"), { recursive: true });
        fs.writeFileSync(path.join(root, "node_modules", ".bin", "pulumi"), FAKE_PULUMI, { mode: 0o755 });
        const r = await runCli(["up"], env({ FAKE_PULUMI_WHOAMI_STDERR: "pulumi: fetch failed" }));
        expect(r.code).toBe(2);
        expect(r.err).toContain("The Pulumi CLI could not be downloaded (`pulumi: fetch failed`)");
        expect(fs.existsSync(path.join(root, ".pulumi-state"))).toBe(false);
    });

    test("backend URLs are printed without user info or query", () => {
        expect(showUrl("postgres://user:secret@db.example:5432/pulumi")).toBe("postgres://db.example:5432/pulumi");
        expect(showUrl("azblob://state?storage_account=acct")).toBe("azblob://state?…");
        expect(showUrl("file:///home/me/repo/.pulumi-state")).toBe("file:///home/me/repo/.pulumi-state");
    });
});

describe("which pulumi", () => {
    test("one on PATH first, npm's node_modules/.bin entries skipped, the devDependency as fallback, else how to get one", () => {
        const npmBin = path.join(root, "node_modules", ".bin");
        fs.mkdirSync(npmBin, { recursive: true });
        fs.writeFileSync(path.join(npmBin, "pulumi"), "#!/bin/sh\n", { mode: 0o755 });
        const ctx = (p: string): CliContext => ({ root, env: { PATH: p }, cwd: tmp, out: () => undefined, err: () => undefined });
        expect(findPulumi(ctx([npmBin, bin].join(path.delimiter)))).toEqual({ path: path.join(bin, "pulumi"), fromNpm: false });
        expect(findPulumi(ctx(npmBin))).toEqual({ path: path.join(npmBin, "pulumi"), fromNpm: true });
        fs.rmSync(npmBin, { recursive: true });
        expect(() => findPulumi(ctx("/nonexistent"))).toThrow(/No Pulumi CLI found: run `npm ci`/);
    });
});

describe("stack select vs init", () => {
    test("an existing stack is selected, never re-created", async () => {
        existingStacks("dev");
        const r = await runCli(["up"], env({ PULUMI_CONFIG_PASSPHRASE: PASSPHRASE }));
        expect(r.code).toBe(0);
        expect(commands().filter((c) => c.startsWith("stack"))).toEqual(["stack select dev --non-interactive"]);
        expect(r.err.split("\n")).toContain("stack: dev");
    });

    test("destroy and kubeconfig never create a stack: they stop, saying how to create one", async () => {
        for (const cmd of ["destroy", "kubeconfig"]) {
            fs.rmSync(log, { force: true });
            const r = await runCli([cmd], env({ PULUMI_CONFIG_PASSPHRASE: PASSPHRASE }));
            expect(r.code).toBe(2);
            expect(r.err).toContain('There is no stack "dev" in file://');
            expect(r.err).toContain("`npm run preview -- --stack dev` creates it");
            expect(commands().filter((c) => !c.startsWith("whoami"))).toEqual(["stack select dev --non-interactive"]);
        }
    });

    test("a stack select failing for another reason is reported, not answered with stack init", async () => {
        existingStacks("dev");
        fs.writeFileSync(path.join(bin, "pulumi"), FAKE_PULUMI.replace('if (a === "stack" && b === "select") {', 'if (a === "stack" && b === "select") { console.error("error: could not read backend: permission denied"); process.exit(1);'), { mode: 0o755 });
        const r = await runCli(["up"], env({ PULUMI_CONFIG_PASSPHRASE: PASSPHRASE }));
        expect(r.code).toBe(1);
        expect(r.err).toContain("pulumi stack select dev failed:\nerror: could not read backend: permission denied");
        expect(commands().some((c) => c.startsWith("stack init") || c.startsWith("up"))).toBe(false);
    });

    test("the stack: --stack X, --stack=X, -s X, npm's --stack=X, PULUMI_STACK, default dev", async () => {
        const cases: [string[], Record<string, string>, string][] = [
            [["up", "--stack", "prod"], {}, "prod"],
            [["up", "--stack=prod"], {}, "prod"],
            [["up", "-s", "prod"], {}, "prod"],
            [["up"], { npm_config_stack: "prod" }, "prod"],
            [["up"], { PULUMI_STACK: "staging" }, "staging"],
            [["up"], {}, "dev"],
        ];
        for (const [args, extra, stack] of cases) {
            fs.rmSync(log, { force: true });
            existingStacks("dev", "prod", "staging");
            const r = await runCli(args, env({ PULUMI_CONFIG_PASSPHRASE: PASSPHRASE, ...extra }));
            expect(r.code).toBe(0);
            const run = commands().filter((c) => !c.startsWith("whoami"));
            expect(run[0]).toBe(`stack select ${stack} --non-interactive`);
            // The user's own --stack is passed through as given; otherwise the wrapper adds it.
            expect(run[1]).toBe(args.length > 1 ? args.join(" ") : `up --stack ${stack}`);
        }
    });

    test("`npm run up --stack prod` (without --): npm ate the flag; the wrapper says how to write it", async () => {
        const r = await runCli(["up", "prod"], env({ npm_config_stack: "true", PULUMI_CONFIG_PASSPHRASE: PASSPHRASE }));
        expect(r.code).toBe(2);
        expect(r.err).toContain("`npm run up -- --stack prod`");
        expect(commands().filter((c) => !c.startsWith("whoami"))).toEqual([]);
    });

    test("a bad stack name is refused before anything runs", async () => {
        const r = await runCli(["up", "--stack", "prod; rm -rf /"], env({ PULUMI_CONFIG_PASSPHRASE: PASSPHRASE }));
        expect(r.code).toBe(2);
        expect(r.err).toContain("is not a stack name");
        expect(commands().filter((c) => !c.startsWith("whoami"))).toEqual([]);
    });
});

describe("passphrase", () => {
    test("missing: a clear message with both ways to set it; nothing selected, created or run", async () => {
        existingStacks("dev");
        const r = await runCli(["up"], env());
        expect(r.code).toBe(2);
        expect(r.err).toContain('Stack "dev" needs a passphrase');
        expect(r.err).toContain("export PULUMI_CONFIG_PASSPHRASE_FILE=~/.config/kubeadm-pulumi/passphrase");
        expect(r.err).toContain("read -rs PULUMI_CONFIG_PASSPHRASE && export PULUMI_CONFIG_PASSPHRASE");
        expect(r.err).toContain("Keep the passphrase out of git");
        expect(commands()).toEqual(["whoami --json --non-interactive"]);
    });

    test("PULUMI_CONFIG_PASSPHRASE reaches Pulumi through the environment only, never an argument or a line printed", async () => {
        existingStacks("dev");
        const r = await runCli(["up", "--yes"], env({ PULUMI_CONFIG_PASSPHRASE: PASSPHRASE }));
        expect(r.code).toBe(0);
        expect(calls().every((c) => c.passphraseSha === sha(PASSPHRASE))).toBe(true);
        expect(JSON.stringify(calls().map((c) => c.argv))).not.toContain(PASSPHRASE);
        expect(r.out + r.err).not.toContain(PASSPHRASE);
    });

    test("PULUMI_CONFIG_PASSPHRASE_FILE: passed on as is; a missing or empty file is refused; a readable-by-others file is warned about", async () => {
        existingStacks("dev");
        const file = path.join(tmp, "pass");
        fs.writeFileSync(file, `${PASSPHRASE}\n`, { mode: 0o600 });
        let r = await runCli(["up"], env({ PULUMI_CONFIG_PASSPHRASE_FILE: file }));
        expect(r.code).toBe(0);
        expect(calls().every((c) => c.passphraseFile === file && c.passphraseSha === null)).toBe(true);
        expect(r.err).not.toContain("warning");
        fs.chmodSync(file, 0o644);
        r = await runCli(["up"], env({ PULUMI_CONFIG_PASSPHRASE_FILE: file }));
        expect(r.code).toBe(0);
        expect(r.err).toContain(`warning: ${file} (the passphrase file) can be read by other users: chmod 600 ${file}`);
        expect(r.out + r.err).not.toContain(PASSPHRASE);
        r = await runCli(["up"], env({ PULUMI_CONFIG_PASSPHRASE_FILE: path.join(tmp, "nope") }));
        expect(r.code).toBe(2);
        expect(r.err).toContain("which does not exist or cannot be read");
        fs.writeFileSync(file, "");
        r = await runCli(["up"], env({ PULUMI_CONFIG_PASSPHRASE_FILE: file }));
        expect(r.code).toBe(2);
        expect(r.err).toContain("which is empty or not a file");
    });

    test("a stack whose Pulumi.<stack>.yaml names another secrets provider (a KMS) needs no passphrase", async () => {
        existingStacks("kms");
        fs.writeFileSync(path.join(root, "Pulumi.kms.yaml"), "secretsprovider: awskms://alias/kubeadm?region=eu-west-1\nencryptedkey: AAAA\nconfig: {}\n");
        const r = await runCli(["up", "--stack", "kms"], env());
        expect(r.code).toBe(0);
        expect(commands()).toContain("up --stack kms");
    });
});

describe("arguments passed through", () => {
    test("every argument after the command, in order, and Pulumi's exit code", async () => {
        existingStacks("dev");
        const args = ["up", "--yes", "--parallel", "16", "--target", "urn:pulumi:dev::kubeadm-cluster::x", "--", "odd arg with spaces"];
        const r = await runCli(args, env({ PULUMI_CONFIG_PASSPHRASE: PASSPHRASE, FAKE_PULUMI_EXIT: "3" }));
        expect(r.code).toBe(3);
        expect(calls().pop()!.argv).toEqual([...args, "--stack", "dev"]);
    });

    test("npm run pulumi -- <anything>: the backend and stack set up, the command itself untouched", async () => {
        existingStacks("dev");
        const r = await runCli(["config", "set", "--secret", "--path", "ssh.privateKey"], env({ PULUMI_CONFIG_PASSPHRASE: PASSPHRASE }));
        expect(r.code).toBe(0);
        expect(calls().pop()!.argv).toEqual(["config", "set", "--secret", "--path", "ssh.privateKey"]);
        // Commands that manage stacks or logins themselves get no stack step and no passphrase check.
        fs.rmSync(log);
        const s = await runCli(["stack", "ls"], env());
        expect(s.code).toBe(0);
        expect(commands()).toEqual(["whoami --json --non-interactive", "stack ls"]);
    });
});

describe("npm run kubeconfig", () => {
    const mode = (f: string) => fs.statSync(f).mode & 0o777;

    test("writes the kubeconfig output to ./kubeconfig with mode 0600, exactly, and never prints it", async () => {
        existingStacks("dev");
        const r = await runCli(["kubeconfig"], env({ PULUMI_CONFIG_PASSPHRASE: PASSPHRASE }));
        expect(r.code).toBe(0);
        const file = path.join(tmp, "kubeconfig");
        expect(fs.readFileSync(file, "utf8")).toBe(KUBECONFIG);
        expect(mode(file)).toBe(0o600);
        expect(calls().pop()!.argv).toEqual(["stack", "output", "kubeconfig", "--show-secrets", "--stack", "dev", "--non-interactive"]);
        expect(r.out + r.err).not.toContain(KUBE_MARKER);
        expect(r.out + r.err).not.toContain(PASSPHRASE);
        expect(r.out).toContain(`wrote the kubeconfig of stack dev to ${file} (mode 0600`);
        expect(r.out).toContain("kubectl --kubeconfig ./kubeconfig get nodes");
        // No temporary file left next to it.
        expect(fs.readdirSync(tmp).filter((f) => f.includes(".tmp"))).toEqual([]);
    });

    test("0600 whatever the umask, replacing an existing world-readable file; a path or --out relative to where npm ran", async () => {
        existingStacks("prod");
        fs.mkdirSync(path.join(tmp, "out"));
        const old = path.join(tmp, "out", "prod.kubeconfig");
        fs.writeFileSync(old, "old content", { mode: 0o644 });
        fs.chmodSync(old, 0o644);
        const umask = process.umask(0);
        try {
            for (const args of [["kubeconfig", "out/prod.kubeconfig", "--stack", "prod"], ["kubeconfig", "--stack", "prod", "--out", "out/prod.kubeconfig"]]) {
                const r = await runCli(args, env({ PULUMI_CONFIG_PASSPHRASE: PASSPHRASE }));
                expect(r.code).toBe(0);
                expect(fs.readFileSync(old, "utf8")).toBe(KUBECONFIG);
                expect(mode(old)).toBe(0o600);
                expect(r.out + r.err).not.toContain(KUBE_MARKER);
            }
        } finally {
            process.umask(umask);
        }
    });

    test("an output that is not a kubeconfig (no `up` yet) is refused without being shown; no file is written", async () => {
        existingStacks("dev");
        fs.writeFileSync(path.join(tmp, "kubeconfig.out"), `something-else ${KUBE_MARKER}\n`);
        const r = await runCli(["kubeconfig"], env({ PULUMI_CONFIG_PASSPHRASE: PASSPHRASE }));
        expect(r.code).toBe(2);
        expect(r.err).toContain('Stack "dev" has no kubeconfig output yet (its content is not shown)');
        expect(r.out + r.err).not.toContain(KUBE_MARKER);
        expect(fs.existsSync(path.join(tmp, "kubeconfig"))).toBe(false);
    });

    test("a stack without the output (never brought up): says to run up first", async () => {
        existingStacks("dev");
        fs.rmSync(path.join(tmp, "kubeconfig.out"));
        const r = await runCli(["kubeconfig"], env({ PULUMI_CONFIG_PASSPHRASE: PASSPHRASE }));
        expect(r.code).toBe(2);
        expect(r.err).toContain('Stack "dev" has no kubeconfig output yet: run `npm run up -- --stack dev` first');
        expect(fs.existsSync(path.join(tmp, "kubeconfig"))).toBe(false);
    });

    test("an unknown option is refused before anything runs", async () => {
        const r = await runCli(["kubeconfig", "--show-secrets"], env({ PULUMI_CONFIG_PASSPHRASE: PASSPHRASE }));
        expect(r.code).toBe(2);
        expect(r.err).toContain("unknown option --show-secrets");
        expect(commands()).toEqual([]);
    });

    test("end to end through npm: `npm run kubeconfig -- <path>` from another directory; stdout has neither the kubeconfig nor the passphrase", () => {
        existingStacks("dev");
        const r = spawnSync("npm", ["--prefix", REPO, "run", "kubeconfig", "--", "e2e.kubeconfig"], {
            cwd: tmp,
            encoding: "utf8",
            // A backend is given, so nothing is created in the repository; Pulumi.dev.yaml is only read.
            env: { ...env({ PULUMI_BACKEND_URL: `file://${tmp}/state`, PULUMI_CONFIG_PASSPHRASE: PASSPHRASE }), npm_config_update_notifier: "false" },
            timeout: 120_000,
        });
        expect(r.stderr).not.toContain("Error");
        expect(r.status).toBe(0);
        const file = path.join(tmp, "e2e.kubeconfig");
        expect(fs.readFileSync(file, "utf8")).toBe(KUBECONFIG);
        expect(mode(file)).toBe(0o600);
        expect(r.stdout + r.stderr).not.toContain(KUBE_MARKER);
        expect(r.stdout + r.stderr).not.toContain(PASSPHRASE);
        expect(calls().map((c) => c.cwd).every((c) => c === REPO)).toBe(true);
        expect(r.stdout).toContain(`wrote the kubeconfig of stack dev to ${file}`);
    });
});

describe("the docs and the entries agree", () => {
    test("every `npm run X` the README and docs name is a script in package.json, and the docs they link exist", () => {
        const scripts = Object.keys((JSON.parse(fs.readFileSync(path.join(REPO, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts);
        const docs = ["README.md", "docs/environments.md", "docs/ci.md"].map((f) => fs.readFileSync(path.join(REPO, f), "utf8"));
        const named = new Set(docs.flatMap((d) => [...d.matchAll(/npm run ([a-z][\w:-]*)/g)].map((m) => m[1])));
        for (const n of ["up", "preview", "destroy", "kubeconfig", "pulumi"]) expect(named.has(n)).toBe(true);
        for (const n of named) expect(scripts).toContain(n);
        expect(docs[0]).toContain("[docs/environments.md](docs/environments.md)");
        expect(docs[0]).toContain("[docs/ci.md](docs/ci.md)");
    });
});
