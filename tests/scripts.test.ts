/**
 * The step scripts, for real: shellcheck on every file and every rendered
 * command, the library installer and the claim protocol in real bash, the
 * stdin bundles, the join configuration the join script writes, and
 * preflight on this machine.
 */
import { spawn, spawnSync, SpawnSyncReturns } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

import {
    LIBRARY_FILES,
    SCRIPT_DELIMITER,
    SCRIPT_NAMES,
    SCRIPT_VARS,
    ScriptName,
    ScriptVars,
    encodeBundle,
    library,
    remoteCommand,
    renderInstallScript,
    renderScript,
    shellQuote,
    sudoMessage,
} from "../components/scripts";
import { stepCommands, scriptsStepCommands } from "../components/step";
import { diskChecks, evictionThreshold } from "../components/host";
import { parseClusterConfig } from "../components/config";
import { rawConfig } from "./harness";
import { discoverySection } from "../components/kubeadm/config";
import { renderAptProxyConf, renderContainerdProxyDropIn } from "../components/proxy";

const SCRIPTS_DIR = path.join(__dirname, "..", "components", "scripts");
const LIB = path.join(SCRIPTS_DIR, "lib.sh");

// ---------------------------------------------------------------------------
// Realistic variables for every script.

const CONTAINERD_CONFIG = `version = 3

[plugins."io.containerd.cri.v1.images".pinned_images]
  sandbox = "registry.k8s.io/pause:3.10.2"

[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
  SystemdCgroup = true
`;

const CRICTL_CONFIG = `runtime-endpoint: unix:///run/containerd/containerd.sock
image-endpoint: unix:///run/containerd/containerd.sock
timeout: 10
`;

const KUBEADM_CONFIG = `apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
nodeRegistration:
  name: cp-1
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.36.4
`;

const JOIN_CONFIG = `apiVersion: kubeadm.k8s.io/v1beta4
kind: JoinConfiguration
nodeRegistration:
  name: worker-1
`;

/** The proxy variables as the program renders them (components/proxy.ts), for a proxy at 10.0.0.3:3128. */
const PROXY_SPEC = { http: "http://10.0.0.3:3128", https: "http://10.0.0.3:3128", noProxy: ["registry.lan", ".corp.example"] };
const PROXY_NO_PROXY = ["localhost", "127.0.0.1", "10.244.0.0/16", "10.96.0.0/12", "10.0.0.10", ".svc", ".cluster.local", "registry.lan", ".corp.example"];
const PROXY_VARS = {
    PROXY_HTTP: PROXY_SPEC.http,
    PROXY_HTTPS: PROXY_SPEC.https,
    NO_PROXY_LIST: PROXY_NO_PROXY.join(","),
    APT_PROXY_CONF: renderAptProxyConf(PROXY_SPEC),
    CONTAINERD_PROXY_DROPIN: renderContainerdProxyDropIn(PROXY_SPEC, PROXY_NO_PROXY),
};
const NO_PROXY_VARS = { PROXY_HTTP: "", PROXY_HTTPS: "", NO_PROXY_LIST: "", APT_PROXY_CONF: "", CONTAINERD_PROXY_DROPIN: "" };

function prepareVars(controlPlane: boolean, local: { apt?: string; rpm?: string; keyUrl?: string } = {}, registries: [string, string, string][] = [], proxy = false): ScriptVars {
    return {
        REGISTRY_DIRS: registries.map((r) => r[0]),
        REGISTRY_HOSTS_TOML: registries.map((r) => r[1]),
        REGISTRY_CAS: registries.map((r) => r[2]),
        FIREWALL_PORTS: controlPlane ? ["6443/tcp", "2379/tcp", "2380/tcp", "10250/tcp", "10256/tcp", "10257/tcp", "10259/tcp", "8472/udp"] : ["10250/tcp", "10256/tcp", "30000-32767/tcp", "8472/udp"],
        FIREWALL_SOURCES: ["10.244.0.0/16", "10.96.0.0/12"],
        LOCAL_APT_SOURCE: local.apt ?? "",
        LOCAL_RPM_BASEURL: local.rpm ?? "",
        LOCAL_REPO_KEY_URL: local.keyUrl ?? "",
        KUBERNETES_VERSION: "1.36.4",
        KUBERNETES_MINOR: "1.36",
        KUBERNETES_REPO_BASE: "https://pkgs.k8s.io/core:/stable:",
        DOCKER_REPO_BASE: "https://download.docker.com/linux",
        CONTAINERD_VERSION: "2.2.6",
        CONTAINERD_CONFIG,
        CRICTL_CONFIG,
        PAUSE_IMAGE: "registry.k8s.io/pause:3.10.2",
        IMAGE_REPOSITORY: "registry.k8s.io",
        IS_CONTROL_PLANE: controlPlane,
        ...(proxy ? PROXY_VARS : NO_PROXY_VARS),
        SSH_USER: "ubuntu",
        OFFLINE_REPO_DIR: "/var/cache/kubeadm-pulumi/packages",
        OFFLINE_PACKAGES: "",
        OFFLINE_IMAGES: [],
    };
}

const CP_PORTS = ["2379", "2380", "6443", "10250", "10256", "10257", "10259"];
const WORKER_PORTS = ["10250", "10256"];

interface Variant {
    id: string;
    name: ScriptName;
    vars: ScriptVars;
}

const VARIANTS: Variant[] = [
    {
        id: "preflight-control-plane",
        name: "preflight",
        vars: { NODE_NAME: "cp-1", IS_CONTROL_PLANE: true, KUBERNETES_MINOR: "1.36", MIN_CPUS: 2, MIN_MEMORY_MB: 1700, PORTS: CP_PORTS, IGNORE: [], SOURCES: [], DISK: ["/var/lib/containerd\timagefs.available\t15%\t15\t", "/var/lib/kubelet\tnodefs.available\t10%\t10\t"] },
    },
    {
        id: "preflight-worker",
        name: "preflight",
        vars: { NODE_NAME: "worker-1", IS_CONTROL_PLANE: false, KUBERNETES_MINOR: "1.36", MIN_CPUS: 2, MIN_MEMORY_MB: 1700, PORTS: WORKER_PORTS, IGNORE: ["cgroup", "port"],
            SOURCES: ["debian\tpackages.localRepository.apt\thttp://10.0.0.5/debs\t", "any\tproxy.https\thttp://10.0.0.3:3128\t", "any\tcontainerd.registries[0].mirrors[0]\thttps://mirror.example.com\thttp://10.0.0.3:3128"], DISK: [] },
    },
    { id: "prepare-control-plane", name: "prepare", vars: prepareVars(true) },
    { id: "prepare-worker", name: "prepare", vars: prepareVars(false) },
    { id: "prepare-local-repo", name: "prepare", vars: prepareVars(false, { apt: "http://10.0.0.5/debs ./", rpm: "http://10.0.0.5/rpms/" }) },
    { id: "prepare-local-repo-signed", name: "prepare", vars: prepareVars(true, { apt: "http://10.0.0.5/debs stable main", keyUrl: "http://10.0.0.5/key.gpg" }) },
    {
        id: "prepare-registries", name: "prepare", vars: prepareVars(false, {}, [
            ["10.0.0.5:5443", 'server = "https://10.0.0.5:5443"\n', "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"],
            ["_default", '[host."https://mirror.example.com"]\ncapabilities = ["pull", "resolve"]\n', ""],
        ]),
    },
    { id: "prepare-proxy", name: "prepare", vars: prepareVars(false, {}, [], true) },
    {
        id: "prepare-offline", name: "prepare", vars: {
            ...prepareVars(true, { apt: "file:///var/cache/kubeadm-pulumi/packages ./", rpm: "file:///var/cache/kubeadm-pulumi/packages/" }),
            OFFLINE_PACKAGES: `${"a".repeat(64)} .kubeadm-pulumi-offline-aaaaaaaaaaaa-packages.tar.gz`,
            OFFLINE_IMAGES: [`${"b".repeat(64)} .kubeadm-pulumi-offline-bbbbbbbbbbbb-images.tar`],
        },
    },
    { id: "init", name: "init", vars: { NODE_NAME: "cp-1", KUBEADM_CONFIG, API_ENDPOINT: "10.0.0.10:6443" } },
    { id: "join-worker", name: "join", vars: { NODE_NAME: "worker-1", IS_CONTROL_PLANE: false, JOIN_CONFIG, API_ENDPOINT: "10.0.0.10:6443", TOKEN_STEP: "worker-1-token" } },
    { id: "join-control-plane", name: "join", vars: { NODE_NAME: "cp-2", IS_CONTROL_PLANE: true, JOIN_CONFIG, API_ENDPOINT: "[fd00::10]:6443", TOKEN_STEP: "cp-2-token" } },
    { id: "token", name: "token", vars: { NODE_NAME: "worker-1", TOKEN_TTL_SECONDS: 3600 } },
    { id: "forget-node", name: "forget-node", vars: { NODE_NAME: "worker-1" } },
    { id: "node-ready-labels", name: "node-ready", vars: { NODE_NAME: "worker-1", NODE_LABELS: ["node-role.kubernetes.io/worker=", "tier=web"], NODE_TAINTS: ["dedicated=gpu:NoSchedule", "spot:PreferNoSchedule"] } },
    { id: "node-ready-no-labels", name: "node-ready", vars: { NODE_NAME: "worker-1", NODE_LABELS: [], NODE_TAINTS: [] } },
    { id: "drain", name: "drain", vars: { NODE_NAME: "worker-1", DRAIN_TIMEOUT_SECONDS: 300 } },
    { id: "reset", name: "reset", vars: { NODE_NAME: "worker-1" } },
    { id: "uninstall", name: "uninstall", vars: { NODE_NAME: "worker-1" } },
    {
        id: "smoke-test", name: "smoke-test", vars: {
            NODES: ["cp-1", "worker-1"], SMOKE_IMAGE: "registry.k8s.io/e2e-test-images/agnhost:2.63.0", DNS_DOMAIN: "cluster.local", INGRESS_CLASS: "traefik",
            INGRESS_TARGETS: ["10.0.0.11:80"], DASHBOARD_HOST: "dashboard.demo.internal", CHECK_METRICS: true, CHECKED: "nodes cp-1,worker-1",
        },
    },
    { id: "smoke-test-bare", name: "smoke-test", vars: { NODES: ["cp-1"], SMOKE_IMAGE: "mirror.example:5000/e2e-test-images/agnhost:2.63.0", DNS_DOMAIN: "k8s.internal", INGRESS_CLASS: "", INGRESS_TARGETS: [], DASHBOARD_HOST: "", CHECK_METRICS: false, CHECKED: "nodes cp-1" } },
    { id: "gateway-api", name: "gateway-api", vars: { CRDS_SOURCE: "https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.5.1/standard-install.yaml", CRDS_VERSION: "v1.5.1" } },
    { id: "gateway-api-stdin", name: "gateway-api", vars: { CRDS_SOURCE: "-", CRDS_VERSION: "v1.5.1" } },
];

// ---------------------------------------------------------------------------
// Helpers.

function run(cmd: string, args: string[], input?: string, env?: NodeJS.ProcessEnv): SpawnSyncReturns<string> {
    const r = spawnSync(cmd, args, { input: input ?? "", encoding: "utf8", env: env ?? process.env, timeout: 120_000 });
    if (r.error) throw r.error;
    return r;
}

/** Run bash with lib.sh sourced (under the same options as a rendered script), then `code`. */
function withLib(code: string, input?: string, env?: NodeJS.ProcessEnv): SpawnSyncReturns<string> {
    const script = `set -euo pipefail\nshopt -s inherit_errexit\nsource ${shellQuote(LIB)}\n${code}\n`;
    return run("bash", ["-c", script, "lib-test"], input, env);
}

const shellcheckPresent = run("sh", ["-c", "command -v shellcheck"]).status === 0;
if (!shellcheckPresent) {
    if (process.env.CI === "true") {
        throw new Error("shellcheck is not installed, and the script lint is mandatory in CI");
    }
    // (npm test stops before jest without shellcheck: tests/check-tools.js)
    // eslint-disable-next-line no-console
    console.warn("shellcheck is not installed: skipping the shellcheck tests of components/scripts");
}
const itShellcheck = shellcheckPresent ? it : it.skip;

function shellcheck(text: string, shell: "bash" | "sh", exclude: string[] = []): string {
    const r = run("shellcheck", ["-s", shell, "-f", "gcc", ...(exclude.length ? ["-e", exclude.join(",")] : []), "-"], text);
    return r.status === 0 ? "" : `${r.stdout}${r.stderr}` || `shellcheck exited ${r.status}`;
}

/**
 * One script as shellcheck should read it: the rendered header, then the
 * files the step sources (lib.sh, the step, and for prepare the shared and one
 * family file), with the `source` lines that would load them dropped.
 */
function inlined(v: Variant, family: "debian" | "rhel" = "debian"): string {
    const header = renderScript(v.name, v.vars, { action: "create", claim: "x-step", lib: "/lib" })
        .split("\n")
        .filter((l) => !/^source |^if \[\[ ! -r |^ {4}printf |^ {4}exit |^fi$|^readonly KP_LIB=/.test(l))
        .join("\n");
    const files = ["lib.sh", ...(v.name === "prepare" ? ["prepare-common.sh", `prepare-${family}.sh`] : []), `${v.name}.sh`];
    const body = files
        .map((f) => fs.readFileSync(path.join(SCRIPTS_DIR, f), "utf8").replace(/^# shellcheck shell=bash\n/, ""))
        .join("\n")
        // prepare.sh's own source lines: the files are inlined above
        .replace(/^\s*# shellcheck source=.*\n\s*source "\$KP_LIB\/prepare-[a-z]+\.sh"\n/gm, "");
    return `${header}\n${body}`;
}

let tmpRoot: string;
beforeAll(() => {
    tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), "kubeadm-pulumi-scripts-"));
});
afterAll(() => {
    fs.rmSync(tmpRoot, { recursive: true, force: true });
});

/** Install the library into a fresh directory the way the scripts step does (the real installer, real bash). */
function installLibrary(label: string, action: "create" | "update" = "create") {
    const root = fs.mkdtempSync(path.join(tmpRoot, `${label}-`));
    const lib = path.join(root, "lib", library().sha256.slice(0, 12));
    const state = path.join(root, "state");
    const script = renderInstallScript("node-a", { action, claim: "node-a-scripts", lib });
    const r = run("bash", ["-c", script, "node-a-scripts"], library().archive, { ...process.env, KP_STATE_DIR: state });
    return { root, lib, state, r };
}

// ---------------------------------------------------------------------------

describe("the library", () => {
    it("holds lib.sh, the prepare family files and one file per step, hashed", () => {
        expect([...SCRIPT_NAMES].sort()).toEqual(
            ["drain", "forget-node", "gateway-api", "init", "join", "node-ready", "preflight", "prepare", "reset", "smoke-test", "token", "uninstall"].sort(),
        );
        expect(LIBRARY_FILES).toEqual(expect.arrayContaining(["lib.sh", "prepare-common.sh", "prepare-debian.sh", "prepare-rhel.sh", "uninstall.sh"]));
        const lib = library();
        expect(lib.sha256).toMatch(/^[0-9a-f]{64}$/);
        expect(lib.dir).toBe(`/usr/local/lib/kubeadm-pulumi/${lib.sha256.slice(0, 12)}`);
        expect(lib.archive.split("\n")[0]).toContain(lib.sha256.slice(0, 12));
        for (const f of LIBRARY_FILES) expect(lib.archive).toContain(`\n==> ${f} <==\n${fs.readFileSync(path.join(SCRIPTS_DIR, f), "utf8")}`);
        for (const name of SCRIPT_NAMES) expect(VARIANTS.some((v) => v.name === name)).toBe(true);
    });

    itShellcheck.each(LIBRARY_FILES.map((f) => [f]))("%s passes shellcheck on its own", (f) => {
        const r = run("shellcheck", ["-s", "bash", "-x", "-f", "gcc", path.join(SCRIPTS_DIR, f)]);
        expect(`${r.stdout}${r.stderr}`).toBe("");
    });

    const lintCases: [string, Variant, "debian" | "rhel"][] = VARIANTS.flatMap((v): [string, Variant, "debian" | "rhel"][] =>
        v.name === "prepare" ? [[`${v.id} (debian)`, v, "debian"], [`${v.id} (rhel)`, v, "rhel"]] : [[v.id, v, "debian"]]);
    itShellcheck.each(lintCases)(
        "%s: the step as it runs (header + sourced files) passes shellcheck",
        (_id: string, v: Variant, family: "debian" | "rhel") => {
            expect(shellcheck(inlined(v, family), "bash")).toBe("");
        },
    );

    it("uses every declared variable in its step file", () => {
        for (const name of SCRIPT_NAMES) {
            const files = [`${name}.sh`, ...(name === "prepare" ? ["prepare-common.sh", "prepare-debian.sh", "prepare-rhel.sh"] : [])];
            const text = files.map((f) => fs.readFileSync(path.join(SCRIPTS_DIR, f), "utf8")).join("\n").split("\n").filter((l) => !l.startsWith("#")).join("\n");
            for (const k of Object.keys(SCRIPT_VARS[name])) {
                expect({ name, k, used: new RegExp(`\\b${k}\\b`).test(text) }).toEqual({ name, k, used: true });
            }
        }
    });
});

describe("install-scripts (the scripts step), in real bash", () => {
    it("installs exactly the library files into the hash directory and claims them", () => {
        const { lib, state, r } = installLibrary("install");
        expect(r.stderr).toContain("step scripts ready on node-a");
        expect(r.status).toBe(0);
        expect(r.stdout).toContain(`step scripts: installed to ${lib}`);
        expect(fs.readdirSync(lib).sort()).toEqual([".sha256", ...LIBRARY_FILES].sort());
        for (const f of LIBRARY_FILES) {
            expect(fs.readFileSync(path.join(lib, f), "utf8")).toBe(fs.readFileSync(path.join(SCRIPTS_DIR, f), "utf8"));
            expect(fs.statSync(path.join(lib, f)).mode & 0o777).toBe(0o644);
        }
        expect(fs.readdirSync(path.join(state, "claims", "node-a-scripts"))).toHaveLength(1);
    });

    it("a second run with the same library changes nothing (update keeps one claim)", () => {
        const { lib, state } = installLibrary("again");
        const before = fs.statSync(path.join(lib, "lib.sh")).mtimeMs;
        const script = renderInstallScript("node-a", { action: "update", claim: "node-a-scripts", lib });
        const r = run("bash", ["-c", script, "s"], library().archive, { ...process.env, KP_STATE_DIR: state });
        expect(r.status).toBe(0);
        expect(r.stdout).toContain(`step scripts: unchanged (${lib})`);
        expect(fs.statSync(path.join(lib, "lib.sh")).mtimeMs).toBe(before);
        expect(fs.readdirSync(path.join(state, "claims", "node-a-scripts"))).toHaveLength(1);
    });

    it("refuses a damaged archive and installs nothing", () => {
        const root = fs.mkdtempSync(path.join(tmpRoot, "damaged-"));
        const lib = path.join(root, "lib", library().sha256.slice(0, 12));
        const script = renderInstallScript("node-a", { action: "create", claim: "node-a-scripts", lib });
        const damaged = library().archive.replace("set -euo", "set -eu0");
        const r = run("bash", ["-c", script, "s"], damaged, { ...process.env, KP_STATE_DIR: path.join(root, "state") });
        expect(r.status).toBe(1);
        expect(r.stderr).toMatch(/the step scripts on stdin have SHA-256 [0-9a-f]{64}, expected [0-9a-f]{64}/);
        expect(fs.existsSync(lib)).toBe(false);
        expect(fs.existsSync(path.join(root, "state"))).toBe(false);
    });
});

describe("claims: a replacement never undoes a live step", () => {
    const env = (state: string) => ({ ...process.env, KP_STATE_DIR: state });
    const body = (action: string) => `KP_ACTION=${action}; KP_CLAIM=worker-1-join; undo() { say "UNDONE"; }; kp_step undo`;

    it("create claims, update keeps one claim, delete undoes only when the last claim goes", () => {
        const state = fs.mkdtempSync(path.join(tmpRoot, "claims-"));
        const claims = () => fs.readdirSync(path.join(state, "claims", "worker-1-join")).length;
        expect(withLib(body("create"), "", env(state)).stdout).toBe("UNDONE\n");
        expect(claims()).toBe(1);
        withLib(body("update"), "", env(state));
        expect(claims()).toBe(1);
        // pulumi up --replace: the new create runs first, then the old delete
        withLib(body("create"), "", env(state));
        expect(claims()).toBe(2);
        const oldDelete = withLib(body("delete"), "", env(state));
        expect(oldDelete.status).toBe(0);
        expect(oldDelete.stdout).not.toContain("UNDONE");
        expect(oldDelete.stdout).toContain("kept: another instance of step worker-1-join is live on this host");
        expect(claims()).toBe(1);
        // the host leaves the stack: the last claim goes and the step is undone
        const lastDelete = withLib(body("delete"), "", env(state));
        expect(lastDelete.stdout).toBe("UNDONE\n");
        expect(fs.existsSync(path.join(state, "claims", "worker-1-join"))).toBe(false);
    });

    it("a delete with no claim at all (a host never claimed, or wiped) undoes", () => {
        const state = fs.mkdtempSync(path.join(tmpRoot, "noclaim-"));
        expect(withLib(body("delete"), "", env(state)).stdout).toBe("UNDONE\n");
    });

    it("a failed create leaves no claim (it is not in Pulumi's state, so nothing would release it)", () => {
        const state = fs.mkdtempSync(path.join(tmpRoot, "failed-"));
        const r = withLib(`KP_ACTION=create; KP_CLAIM=worker-1-join; fail() { die "boom"; }; kp_step fail`, "", env(state));
        expect(r.status).toBe(1);
        expect(fs.existsSync(path.join(state, "claims", "worker-1-join"))).toBe(false);
    });

    it("update after a lost claim restores exactly one", () => {
        const state = fs.mkdtempSync(path.join(tmpRoot, "restore-"));
        withLib(body("update"), "", env(state));
        withLib(body("update"), "", env(state));
        expect(fs.readdirSync(path.join(state, "claims", "worker-1-join"))).toHaveLength(1);
    });
});

describe("renderScript", () => {
    it.each(VARIANTS.map((v) => [v.id, v] as const))("renders %s deterministically and sources the installed step", (_id, v) => {
        const a = renderScript(v.name, v.vars, { action: "run" });
        const b = renderScript(v.name, { ...Object.fromEntries(Object.entries(v.vars).reverse()) }, { action: "run" });
        expect(a).toBe(b);
        expect(a.startsWith("#!/usr/bin/env bash\nset -euo pipefail\n")).toBe(true);
        expect(a).not.toMatch(/^\s*set\s+(-[a-z]*x|-o\s+xtrace)/m);
        expect(a).toContain(`readonly KP_LIB='${library().dir}'\n`);
        expect(a.trimEnd().split("\n").slice(-2)).toEqual([`source "$KP_LIB/lib.sh"`, `source "$KP_LIB/${v.name}.sh"`]);
    });

    it("writes the header variables sorted, quoted, arrays and booleans as documented", () => {
        const s = renderScript("node-ready", { NODE_NAME: "it's", NODE_LABELS: ["a=b", "c=d"], NODE_TAINTS: [] }, { action: "create", claim: "n-node" });
        expect(s).toContain("readonly KP_ACTION='create'\nreadonly KP_CLAIM='n-node'\nreadonly -a NODE_LABELS=('a=b' 'c=d')\nreadonly NODE_NAME='it'\\''s'\nreadonly -a NODE_TAINTS=()\n");
        const p = renderScript("preflight", VARIANTS[0].vars);
        expect(p).toContain("readonly IS_CONTROL_PLANE='true'\n");
        expect(p).toContain("readonly MIN_CPUS='2'\n");
        expect(renderScript("node-ready", { NODE_NAME: "n", NODE_LABELS: [], NODE_TAINTS: [] })).toContain("readonly -a NODE_LABELS=()\n");
    });

    it("round-trips awkward values through real bash", () => {
        const nasty = `it's "quoted" $HOME \`id\` $(id) \\ back\nslash\n\ttab ; rm -rf / # '' end\n`;
        const header = (s: string) => s.split("\n").filter((l) => l.startsWith("readonly ") || !/^(#!|set |shopt |if |fi|source |    )/.test(l)).join("\n");
        const script = renderScript("reset", { NODE_NAME: nasty });
        const r = run("bash", ["-c", `${header(script)}\nprintf '%s' "$NODE_NAME"`]);
        expect(r.stderr).toBe("");
        expect(r.stdout).toBe(nasty);

        const arr = ["a b", "it's", "$x", "new\nline", ""];
        const s2 = renderScript("node-ready", { NODE_NAME: "n", NODE_LABELS: arr, NODE_TAINTS: [] });
        const r2 = run("bash", ["-c", `${header(s2)}\nprintf '<%s>' "\${NODE_LABELS[@]}"`]);
        expect(r2.stdout).toBe(arr.map((a) => `<${a}>`).join(""));
    });

    it("throws on missing, unknown and mistyped variables, and on a claimed action without a claim", () => {
        expect(() => renderScript("reset", {})).toThrow(/missing var\(s\) NODE_NAME/);
        expect(() => renderScript("reset", { NODE_NAME: "a", EXTRA: "b" })).toThrow(/unknown var\(s\) EXTRA/);
        expect(() => renderScript("drain", { NODE_NAME: "a", DRAIN_TIMEOUT_SECONDS: "soon" })).toThrow(/non-negative integer/);
        expect(() => renderScript("drain", { NODE_NAME: "a", DRAIN_TIMEOUT_SECONDS: -1 })).toThrow(/non-negative integer/);
        expect(() => renderScript("join", { ...VARIANTS.find((v) => v.id === "join-worker")!.vars, IS_CONTROL_PLANE: "true" })).toThrow(/boolean/);
        expect(() => renderScript("node-ready", { NODE_NAME: "a", NODE_LABELS: "x=y", NODE_TAINTS: [] })).toThrow(/array/);
        expect(() => renderScript("reset", { NODE_NAME: ["a"] })).toThrow(/string/);
        expect(() => renderScript("reset", { NODE_NAME: "a\0b" })).toThrow(/NUL/);
        expect(() => renderScript("nope" as ScriptName, {})).toThrow(/unknown script/);
        expect(() => renderScript("reset", { NODE_NAME: "a" }, { action: "delete" })).toThrow(/needs a claim name/);
    });

    it("without the installed library: a create fails saying which step installs it, a delete has nothing to undo", () => {
        const missing = path.join(tmpRoot, "no-such-lib");
        const create = run("bash", ["-c", renderScript("reset", { NODE_NAME: "a" }, { action: "create", claim: "a-join", lib: missing })]);
        expect(create.status).toBe(1);
        expect(create.stderr).toContain(`the step scripts (${missing}) are not on this host: the host's scripts step installs them`);
        const del = run("bash", ["-c", renderScript("reset", { NODE_NAME: "a" }, { action: "delete", claim: "a-join", lib: missing })]);
        expect(del.status).toBe(0);
        expect(del.stderr).toContain("nothing to undo");
    });
});

describe("step commands", () => {
    const target = { node: "worker-1", user: "ubuntu", address: "192.0.2.11", port: 22 };
    const join = VARIANTS.find((v) => v.id === "join-worker")!;
    const commands = stepCommands("worker-1-join", {
        target, script: "join", vars: join.vars, what: "kubeadm join of worker-1 as a worker",
        onDelete: { script: "reset", vars: { NODE_NAME: "worker-1" }, what: "kubeadm reset of worker-1" },
    });

    it("start with three comment lines saying what runs where (all a preview shows of a new step)", () => {
        expect(commands.create.split("\n").slice(0, 3)).toEqual([
            "# kubeadm-pulumi step worker-1-join: join on worker-1 (ubuntu@192.0.2.11:22)",
            "# kubeadm join of worker-1 as a worker",
            "# deleting this step (worker-1 leaves the stack, or pulumi destroy): reset: kubeadm reset of worker-1",
        ]);
        expect(commands.delete!.split("\n").slice(0, 3)).toEqual([
            "# kubeadm-pulumi undo of step worker-1-join: reset on worker-1 (ubuntu@192.0.2.11:22)",
            "# kubeadm reset of worker-1",
            "# runs when the step is deleted; a no-op while a replacement of worker-1-join is live on worker-1 (its claim)",
        ]);
        for (const text of Object.values(commands)) for (const line of text.split("\n").slice(0, 3)) expect(line.length).toBeLessThanOrEqual(150);
    });

    it("a step that runs on the first control plane for a worker (its token, its node step) says that the worker's leaving deletes it", () => {
        const cp = { node: "cp-1", user: "ubuntu", address: "192.0.2.10", port: 22 };
        const token = stepCommands("worker-1-token", {
            target: cp, script: "token", vars: { NODE_NAME: "worker-1", TOKEN_TTL_SECONDS: 3600 }, what: "a bootstrap token for worker-1",
            onDelete: { script: "forget-node", vars: { NODE_NAME: "worker-1" }, what: "delete node worker-1 and its bootstrap tokens" },
        });
        expect(token.create.split("\n").slice(0, 3)).toEqual([
            "# kubeadm-pulumi step worker-1-token: token on cp-1 (ubuntu@192.0.2.10:22)",
            "# a bootstrap token for worker-1",
            "# deleting this step (worker-1 leaves the stack, or pulumi destroy): forget-node: delete node worker-1 and its bootstrap tokens",
        ]);
    });

    it("carry the claim protocol: create claims, update keeps, delete releases", () => {
        expect(commands.create).toContain("readonly KP_ACTION='create'\nreadonly KP_CLAIM='worker-1-join'\n");
        expect(commands.update).toContain("readonly KP_ACTION='update'\nreadonly KP_CLAIM='worker-1-join'\n");
        expect(commands.delete).toContain("readonly KP_ACTION='delete'\nreadonly KP_CLAIM='worker-1-join'\n");
        expect(commands.update!.replace("'update'", "'create'")).toBe(commands.create);
    });

    it("are small: the scripts live on the host, so a failed step's error (which repeats the command) stays readable", () => {
        for (const text of Object.values(commands)) expect(Buffer.byteLength(text)).toBeLessThan(2500);
        const preflight = stepCommands("worker-1-preflight", { target, script: "preflight", vars: VARIANTS[1].vars, what: "checks" });
        expect(Buffer.byteLength(preflight.create)).toBeLessThan(1500);
        expect(preflight.update).toBeUndefined();
        expect(preflight.delete).toBeUndefined();
        expect(preflight.create).toContain("readonly KP_ACTION='run'\n");
    });

    it.each(VARIANTS.map((v) => [v.id, v] as const))("%s renders as the snapshot", (_id, v) => {
        const c = stepCommands(`node-${v.id}`, { target, script: v.name, vars: v.vars, what: `${v.name} for the test` });
        // (the library's hash changes with every script edit; the snapshot is about the command's shape)
        expect(c.create.replace(library().dir, "/usr/local/lib/kubeadm-pulumi/<hash>")).toMatchSnapshot();
    });

    it("the scripts step installs the library from stdin and uninstalls it on delete", () => {
        const s = scriptsStepCommands("worker-1-scripts", target);
        expect(s.create.split("\n")[0]).toBe("# kubeadm-pulumi step worker-1-scripts: install-scripts on worker-1 (ubuntu@192.0.2.11:22)");
        expect(s.create).toContain(`readonly LIBRARY_SHA256='${library().sha256}'`);
        expect(s.delete).toContain('source "$KP_LIB/uninstall.sh"');
    });

    itShellcheck.each([
        ...VARIANTS.flatMap((v) => [[`${v.id} as root`, v, "root"] as const, [`${v.id} as ubuntu`, v, "ubuntu"] as const]),
    ])("%s: every command text passes shellcheck -s sh, and its script shellcheck -s bash", (_id, v, user) => {
        const c = stepCommands("s", {
            target: { ...target, user }, script: v.name, vars: v.vars, what: "x",
            onDelete: { script: "reset", vars: { NODE_NAME: "n" }, what: "y" },
        });
        for (const text of Object.values(c)) expect(shellcheck(text, "sh")).toBe("");
        // (the variables are read by the sourced files, linted with them above)
        expect(shellcheck(renderScript(v.name, v.vars, { action: "create", claim: "s" }), "bash", ["SC2034", "SC1091"])).toBe("");
    });

    itShellcheck("the scripts step's commands pass shellcheck", () => {
        for (const user of ["root", "ubuntu"]) {
            const s = scriptsStepCommands("w-scripts", { ...target, user });
            for (const text of Object.values(s)) expect(shellcheck(text, "sh")).toBe("");
        }
        expect(shellcheck(renderInstallScript("n", { action: "create", claim: "n-scripts" }), "bash", ["SC2034", "SC1091"])).toBe("");
    });
});

describe("remoteCommand", () => {
    const script = renderScript("reset", { NODE_NAME: "worker-1" });

    it.each([
        ["root", "root"],
        ["non-root", "ubuntu"],
    ])("wraps the %s variant as documented", (_label, user) => {
        const cmd = remoteCommand(script, { user, step: "reset-worker-1", comments: ["first", "second"] });
        expect(cmd.startsWith("# first\n# second\n")).toBe(true);
        expect(cmd).toContain(`bash -c "$(cat <<'${SCRIPT_DELIMITER}'\n#!/usr/bin/env bash\n`);
        expect(cmd).toContain(`\n${SCRIPT_DELIMITER}\n)" 'reset-worker-1'`);
        if (user === "root") {
            expect(cmd).not.toContain("sudo");
        } else {
            expect(cmd).toContain("if ! kp_sudo=$(sudo -n true 2>&1 </dev/null); then");
            expect(cmd).toContain("user ubuntu cannot run sudo without a password on this host: add '\\''ubuntu ALL=(ALL) NOPASSWD:ALL'\\'' to /etc/sudoers.d/ubuntu");
            expect(cmd).toContain(`sudo -n bash -c "$(cat <<'${SCRIPT_DELIMITER}'`);
        }
    });

    it("passes stdin, the step name and the exit status through (root variant, run by sh)", () => {
        const inner = `#!/usr/bin/env bash\nset -euo pipefail\nprintf 'step=%s\\n' "$0"\ncat\nprintf '%s\\n' 'no $expansion \`here\`'\nexit 3\n`;
        const cmd = remoteCommand(inner, { user: "root", step: "cat-step" });
        const r = run("sh", ["-c", cmd], "line one\nsecret two\n");
        expect(r.stdout).toBe("step=cat-step\nline one\nsecret two\nno $expansion `here`\n");
        expect(r.status).toBe(3);
    });

    it("prints the sudo message and exits 1 when sudo needs a password", () => {
        const bin = fs.mkdtempSync(path.join(tmpRoot, "fake-sudo-"));
        fs.writeFileSync(path.join(bin, "sudo"), "#!/bin/sh\necho 'sudo: a password is required' >&2\nexit 1\n", { mode: 0o755 });
        const cmd = remoteCommand("echo should-not-run\n", { user: "deploy", step: "s" });
        const r = run("sh", ["-c", cmd], "", { ...process.env, PATH: `${bin}:${process.env.PATH}` });
        expect(r.status).toBe(1);
        expect(r.stdout).toBe("");
        expect(r.stderr).toBe(`${sudoMessage("deploy")}\n  (sudo -n true said: sudo: a password is required)\n`);
        expect(sudoMessage("deploy")).toBe("user deploy cannot run sudo without a password on this host: add 'deploy ALL=(ALL) NOPASSWD:ALL' to /etc/sudoers.d/deploy (visudo -f /etc/sudoers.d/deploy); if sudo wants a tty, also 'Defaults:deploy !requiretty'");
    });

    it("says what sudo said: requiretty, no sudo at all", () => {
        const bin = fs.mkdtempSync(path.join(tmpRoot, "fake-sudo-"));
        fs.writeFileSync(path.join(bin, "sudo"), "#!/bin/sh\necho 'sudo: sorry, you must have a tty to run sudo' >&2\nexit 1\n", { mode: 0o755 });
        const cmd = remoteCommand("echo should-not-run\n", { user: "deploy", step: "s" });
        const tty = run("sh", ["-c", cmd], "", { ...process.env, PATH: `${bin}:${process.env.PATH}` });
        expect(tty.status).toBe(1);
        expect(tty.stderr).toBe(`${sudoMessage("deploy")}\n  (sudo -n true said: sudo: sorry, you must have a tty to run sudo)\n`);
        expect(tty.stderr).toContain("also 'Defaults:deploy !requiretty'");
        // no sudo on PATH: a directory with only sh in it
        const bare = fs.mkdtempSync(path.join(tmpRoot, "no-sudo-"));
        fs.symlinkSync(spawnSync("sh", ["-c", "command -v sh"], { encoding: "utf8" }).stdout.trim(), path.join(bare, "sh"));
        const none = run(path.join(bare, "sh"), ["-c", cmd], "", { PATH: bare });
        expect(none.status).toBe(1);
        expect(none.stdout).toBe("");
        expect(none.stderr.startsWith(`${sudoMessage("deploy")}\n  (sudo -n true said: `)).toBe(true);
        expect(none.stderr).toMatch(/sudo: (not found|command not found)\)\n$/);
    });

    it("runs the script under sudo -n with stdin when sudo works", () => {
        const bin = fs.mkdtempSync(path.join(tmpRoot, "fake-sudo-"));
        fs.writeFileSync(path.join(bin, "sudo"), '#!/bin/sh\n[ "$1" = -n ] || exit 9\nshift\nexec "$@"\n', { mode: 0o755 });
        const cmd = remoteCommand("cat\n", { user: "deploy", step: "s" });
        const r = run("sh", ["-c", cmd], "via sudo\n", { ...process.env, PATH: `${bin}:${process.env.PATH}` });
        expect(r.stdout).toBe("via sudo\n");
        expect(r.status).toBe(0);
    });

    it("rejects a script containing the delimiter line, bad users, bad steps, multi-line comments and oversized commands", () => {
        expect(() => remoteCommand(`echo a\n${SCRIPT_DELIMITER}\necho b\n`, { user: "root", step: "s" })).toThrow(/delimiter/);
        expect(() => remoteCommand(`echo ${SCRIPT_DELIMITER}\n`, { user: "root", step: "s" })).not.toThrow();
        expect(() => remoteCommand("true", { user: "x; rm -rf /", step: "s" })).toThrow(/user/);
        expect(() => remoteCommand("true", { user: "root", step: "a b" })).toThrow(/step/);
        expect(() => remoteCommand("true", { user: "root", step: "s", comments: ["a\nb"] })).toThrow(/comment/);
        expect(() => remoteCommand(`: '${"x".repeat(130 * 1024)}'`, { user: "root", step: "s" })).toThrow(/limit/);
    });
});

describe("encodeBundle and read_bundle", () => {
    const files = {
        "pki/ca.crt": "-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n",
        "pki/etcd/ca.key": "key with 'quotes' and $dollars and \\ and no trailing newline",
        token: "abcdef.0123456789abcdef\n",
        "empty.txt": "",
        "unicode.txt": "héllo wörld ✓\n",
    };

    it("encodes sorted lines with a trailing newline", () => {
        const b = encodeBundle({ b: "2", a: "1" });
        expect(b).toBe("a MQ==\nb Mg==\n");
    });

    it("rejects bad paths", () => {
        for (const p of ["../x", "a/../b", "/etc/passwd", "A", "a b", "a//b", "a/", "", "x..y", "./a"]) {
            expect(() => encodeBundle({ [p]: "x" })).toThrow(/invalid path/);
        }
        expect(() => encodeBundle({})).toThrow(/no files/);
    });

    it("is decoded by lib.sh read_bundle in real bash into the exact files, private", () => {
        const dir = path.join(tmpRoot, "bundle-ok");
        const r = withLib(`read_bundle ${shellQuote(dir)}`, encodeBundle(files));
        expect(r.stderr).toContain("read 5 secret file(s) from stdin");
        expect(r.status).toBe(0);
        expect(r.stdout).toBe("");
        for (const [p, content] of Object.entries(files)) {
            expect(fs.readFileSync(path.join(dir, p), "utf8")).toBe(content);
            expect(fs.statSync(path.join(dir, p)).mode & 0o777).toBe(0o600);
        }
        expect(fs.statSync(path.join(dir, "pki", "etcd")).mode & 0o777).toBe(0o700);
    });

    it.each([
        ["a path escaping the directory", "../evil ZXZpbA==\n", /invalid path/],
        ["an absolute path", "/etc/evil ZXZpbA==\n", /invalid path/],
        ["bad base64", "ok !!!!\n", /invalid base64/],
        ["a line without data", "lonely\n", /malformed line/],
        ["nothing", "", /got nothing/],
    ])("read_bundle rejects %s", (_label, input, message) => {
        const dir = path.join(tmpRoot, `bundle-bad-${Math.random().toString(36).slice(2)}`);
        const r = withLib(`read_bundle ${shellQuote(dir)}`, input);
        expect(r.status).toBe(1);
        expect(r.stderr).toMatch(message);
        expect(fs.existsSync(path.join(tmpRoot, "evil"))).toBe(false);
    });

    it("private_tmpdir makes a 0700 directory removed on exit", () => {
        const r = withLib(`KP_TMPDIR_BASE=${shellQuote(tmpRoot)}; private_tmpdir; stat -c %a "$KP_TMPDIR"; printf '%s\\n' "$KP_TMPDIR"`);
        expect(r.status).toBe(0);
        const [mode, dir] = r.stdout.trim().split("\n");
        expect(mode).toBe("700");
        expect(dir.startsWith(tmpRoot)).toBe(true);
        expect(fs.existsSync(dir)).toBe(false);
    });
});

describe("join writes the discovery section itself: the token goes into that one field", () => {
    /** A fake kubeadm that keeps a copy of the config it is given (validate and join succeed). */
    function fakeKubeadm(dir: string): string {
        const bin = path.join(dir, "bin");
        fs.mkdirSync(bin, { recursive: true });
        fs.writeFileSync(path.join(bin, "kubeadm"), `#!/bin/sh
for a in "$@"; do [ "$prev" = --config ] && cp "$a" ${shellQuote(path.join(dir, "seen.yaml"))}; prev=$a; done
exit 0
`, { mode: 0o755 });
        return bin;
    }

    function joinOnce(joinConfig: string, token: string) {
        const dir = fs.mkdtempSync(path.join(tmpRoot, "join-"));
        const { lib } = installLibrary("join-lib");
        const bin = fakeKubeadm(dir);
        const vars = { ...VARIANTS.find((v) => v.id === "join-worker")!.vars, JOIN_CONFIG: joinConfig };
        const script = renderScript("join", vars, { action: "create", claim: "worker-1-join", lib });
        const hash = `sha256:${"ab".repeat(32)}`;
        const serving = { "kubelet/serving.crt": "SERVING CERT\n", "kubelet/serving.key": "SERVING KEY\n" };
        const r = run("bash", ["-c", script, "worker-1-join"], encodeBundle({ token, "ca-cert-hash": hash, "pki/ca.crt": "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n", ...serving }), {
            ...process.env,
            KP_KUBELET_PKI_DIR: path.join(dir, "kubelet-pki"),
            KP_PATH_PREFIX: bin,
            KP_STATE_DIR: path.join(dir, "state"),
            KP_LOG_DIR: path.join(dir, "log"),
            KP_TMPDIR_BASE: dir,
        });
        const seen = fs.existsSync(path.join(dir, "seen.yaml")) ? fs.readFileSync(path.join(dir, "seen.yaml"), "utf8") : "";
        return { r, seen, hash, dir };
    }

    const alreadyJoined = fs.existsSync("/etc/kubernetes/kubelet.conf");
    const itJoin = alreadyJoined ? it.skip : it;

    itJoin("appends discovery with the endpoint, the token and the CA hash, and nothing else changes", () => {
        const token = "abcdef.0123456789abcdef";
        const { r, seen, hash, dir } = joinOnce(JOIN_CONFIG, token);
        expect(r.stderr).toBe(r.stderr); // (shown on failure)
        expect(r.status).toBe(0);
        // the kubelet's serving certificate is where the KubeletConfiguration names it, the key private
        const pki = path.join(dir, "kubelet-pki");
        expect(fs.readFileSync(path.join(pki, "kubeadm-pulumi-serving.crt"), "utf8")).toBe("SERVING CERT\n");
        expect(fs.statSync(path.join(pki, "kubeadm-pulumi-serving.key")).mode & 0o777).toBe(0o600);
        // exactly what discoverySection() gives: the engine tier validates that with the real kubeadm
        expect(seen).toBe(JOIN_CONFIG + discoverySection("10.0.0.10:6443", token, hash));
        const YAML = require("yaml");
        expect(YAML.parse(seen).discovery.bootstrapToken).toEqual({ apiServerEndpoint: "10.0.0.10:6443", token, caCertHashes: [hash] });
    });

    itJoin("a config value that looks like a placeholder or the token stays as the user wrote it", () => {
        const token = "abcdef.0123456789abcdef";
        const sneaky = `${JOIN_CONFIG}  kubeletExtraArgs:\n  - name: node-labels\n    value: "x=__BOOTSTRAP_TOKEN__"\n`;
        const { r, seen } = joinOnce(sneaky, token);
        expect(r.status).toBe(0);
        expect(seen.split(token).length - 1).toBe(1);
        expect(seen).toContain('value: "x=__BOOTSTRAP_TOKEN__"');
    });

    it("refuses a config that already has a discovery section, and a malformed token", () => {
        expect(joinOnce(`${JOIN_CONFIG}discovery:\n  file: {}\n`, "abcdef.0123456789abcdef").r.stderr).toMatch(/without a discovery section/);
        expect(joinOnce(JOIN_CONFIG, "abcdef.0123456789abcdef\nx: y").r.stderr).toMatch(/malformed/);
    });
});

describe("lib.sh helpers", () => {
    it("cleanup_node_state empties /etc/cni/net.d but never removes the directory (containerd 2.x exits when the CNI directory it watches goes)", () => {
        // Found on the cluster tier: `rm -rf /etc/cni/net.d` made the real containerd 2.2.6
        // exit ("cni network conf monitor error: cni conf dir is removed, stop watching").
        // Behaviour is checked on the host tier (the stand-in containerd exits the same way);
        // this keeps the removal list honest.
        const lib = fs.readFileSync(path.join(SCRIPTS_DIR, "lib.sh"), "utf8");
        const body = lib.slice(lib.indexOf("\ncleanup_node_state() {"), lib.indexOf("\n}\n", lib.indexOf("\ncleanup_node_state() {")));
        const removed = /for m in ([^;]+); do\n\s+if \[\[ -e \$m \|\| -L \$m \]\]; then\n\s+rm -rf -- "\$m"/.exec(body);
        expect(removed).not.toBeNull();
        expect(removed![1].split(/\s+/)).not.toContain("/etc/cni/net.d");
        expect(removed![1].split(/\s+/)).toEqual(expect.arrayContaining(["/etc/kubernetes", "/var/lib/kubelet", "/var/lib/etcd", "/var/lib/cni"]));
        expect(body).toContain("find /etc/cni/net.d -mindepth 1 -delete");
        expect(body.replace(/#.*$/gm, "")).not.toMatch(/rm [^\n]*\/etc\/cni\/net\.d/);
    });

    it("write_file_if_changed writes only on a content or mode change", () => {
        const f = path.join(tmpRoot, "wfic", "conf");
        const r = withLib(`
f=${shellQuote(f)}
write_file_if_changed "$f" 0644 $'a\\nb\\n'; echo "1 $KP_CHANGED"
write_file_if_changed "$f" 0644 $'a\\nb\\n'; echo "2 $KP_CHANGED"
write_file_if_changed "$f" 0600 $'a\\nb\\n'; echo "3 $KP_CHANGED"
write_file_if_changed "$f" 0600 $'a\\nb'; echo "4 $KP_CHANGED"
write_file_if_changed "$f" 600 $'a\\nb'; echo "5 $KP_CHANGED"
stat -c %a "$f"
ls -A "$(dirname "$f")"`);
        expect(r.stderr).toBe("");
        expect(r.stdout).toBe("1 true\n2 false\n3 true\n4 true\n5 false\n600\nconf\n");
        expect(fs.readFileSync(f, "utf8")).toBe("a\nb");
    });

    it("filter_iptables_save drops Kubernetes/CNI chains and jumps but keeps the host's rules", () => {
        const save = [
            "# Generated by iptables-save v1.8.9",
            "*filter",
            ":INPUT ACCEPT [0:0]",
            ":FORWARD DROP [0:0]",
            ":KUBE-FORWARD - [0:0]",
            ":cali-INPUT - [0:0]",
            ":FLANNEL-FWD - [0:0]",
            ":MY-CHAIN - [0:0]",
            "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT",
            '-A INPUT -m comment --comment "kubernetes health" -j KUBE-FORWARD',
            "-A INPUT -j cali-INPUT",
            "-A FORWARD -j FLANNEL-FWD",
            "-A FORWARD -j MY-CHAIN",
            "-A KUBE-FORWARD -j ACCEPT",
            "-A MY-CHAIN -s 10.0.0.0/8 -j ACCEPT",
            "COMMIT",
            "*nat",
            ":POSTROUTING ACCEPT [0:0]",
            ":CNI-abc - [0:0]",
            ":CILIUM_POST_nat - [0:0]",
            "-A POSTROUTING -s 10.244.0.0/16 -g CNI-abc",
            "-A POSTROUTING -j CILIUM_POST_nat",
            "-A POSTROUTING -o eth0 -j MASQUERADE",
            "COMMIT",
            "",
        ].join("\n");
        const r = withLib("filter_iptables_save", save);
        expect(r.stdout).toBe(
            [
                "# Generated by iptables-save v1.8.9",
                "*filter",
                ":INPUT ACCEPT [0:0]",
                ":FORWARD DROP [0:0]",
                ":MY-CHAIN - [0:0]",
                "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT",
                "-A FORWARD -j MY-CHAIN",
                "-A MY-CHAIN -s 10.0.0.0/8 -j ACCEPT",
                "COMMIT",
                "*nat",
                ":POSTROUTING ACCEPT [0:0]",
                "-A POSTROUTING -o eth0 -j MASQUERADE",
                "COMMIT",
                "",
            ].join("\n"),
        );
    });

    it("mask_secrets hides bootstrap tokens and certificate keys but keeps CA hashes", () => {
        const text =
            "kubeadm join 10.0.0.10:6443 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash sha256:0c2c5f5b2d3c0c1e4c9f0d4b5a6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f80 --certificate-key 0c2c5f5b2d3c0c1e4c9f0d4b5a6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f80\n";
        const r = withLib("mask_secrets", text);
        expect(r.stdout).not.toContain("abcdef.0123456789abcdef");
        expect(r.stdout).toContain("--token <redacted-token>");
        expect(r.stdout).toContain("--discovery-token-ca-cert-hash sha256:0c2c5f5b2d3c0c1e4c9f0d4b5a6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f80 --certificate-key <redacted-key>");
    });

    it("pem_body compares certificates whatever their line breaks", () => {
        const a = path.join(tmpRoot, "a.pem");
        const b = path.join(tmpRoot, "b.pem");
        fs.writeFileSync(a, "-----BEGIN CERTIFICATE-----\nAAAA\nBBBB\n-----END CERTIFICATE-----\n");
        fs.writeFileSync(b, "-----BEGIN CERTIFICATE-----\r\nAAAABBBB\r\n-----END CERTIFICATE-----");
        const r = withLib(`[[ $(pem_body ${shellQuote(a)}) == "$(pem_body ${shellQuote(b)})" ]] && echo same`);
        expect(r.stdout).toBe("same\n");
    });

    it("kp_lock_holders names a process holding a lock (from /proc/locks)", () => {
        const lock = path.join(tmpRoot, "lock-frontend");
        fs.writeFileSync(lock, "");
        const r = withLib(`
flock -o ${shellQuote(lock)} sleep 5 &
holder=$!
for _ in $(seq 50); do [[ -n $(kp_lock_holders ${shellQuote(lock)}) ]] && break; sleep 0.1; done
kp_lock_holders ${shellQuote(lock)}
kill "$holder"; wait "$holder" 2>/dev/null || true
echo "after: $(kp_lock_holders ${shellQuote(lock)})"`);
        expect(r.stdout).toMatch(/^[0-9]+ \((flock|sleep)\) on .*lock-frontend\nafter: \n$/);
    });
});

// ---------------------------------------------------------------------------
// preflight, for real, on this machine (from the installed library).

describe("preflight on this machine", () => {
    const hostname = run("sh", ["-c", "hostname 2>/dev/null || cat /proc/sys/kernel/hostname"]).stdout.trim().split(".")[0].toLowerCase();
    const cgroupFs = run("stat", ["-fc", "%T", "/sys/fs/cgroup"]).stdout.trim();
    let lib: string;
    beforeAll(() => {
        lib = installLibrary("preflight-lib").lib;
    });

    function preflightWith(vars: ScriptVars) {
        return run("bash", ["-c", renderScript("preflight", vars, { action: "run", lib }), "preflight"]);
    }

    function preflight(nodeName: string, ports: string[], controlPlane = false, ignore: string[] = [], sources: string[] = []) {
        return preflightWith({ NODE_NAME: nodeName, IS_CONTROL_PLANE: controlPlane, KUBERNETES_MINOR: "1.36", MIN_CPUS: 2, MIN_MEMORY_MB: 1700, PORTS: ports, IGNORE: ignore, SOURCES: sources, DISK: [] });
    }

    it("lists every problem in one run, exits 1 and prints nothing on stdout", () => {
        const r = preflight("not-this-host-xyz", WORKER_PORTS);
        expect(r.status).toBe(1);
        expect(r.stdout).toBe("");
        expect(r.stderr).toContain("preflight failed on host not-this-host-xyz:\n");
        expect(r.stderr).toContain(`  - the hostname is '${hostname}' but the stack config calls this host 'not-this-host-xyz'. Fix: run 'hostnamectl set-hostname not-this-host-xyz'`);
        if (cgroupFs !== "cgroup2fs") {
            expect(r.stderr).toMatch(/ {2}- the host does not use cgroup v2 .*kubelet 1\.35 and newer refuse to run on cgroup v1\. Fix: .*systemd\.unified_cgroup_hierarchy=1/);
        }
    });

    it("with the right hostname, reports the remaining problems in the documented format, or prints the JSON facts", () => {
        const r = preflight(hostname, [], true);
        if (r.status === 0) {
            expect(r.stdout.split("\n").filter((l) => l !== "")).toHaveLength(1);
            const facts = JSON.parse(r.stdout);
            expect(facts.node).toBe(hostname);
            expect(facts.cgroup).toBe("v2");
        } else {
            expect(r.status).toBe(1);
            expect(r.stdout).toBe("");
            const lines = r.stderr.split("\n");
            const start = lines.indexOf(`preflight failed on host ${hostname}:`);
            expect(start).toBeGreaterThanOrEqual(0);
            const problems = lines.slice(start + 1).filter((l) => l !== "");
            expect(problems.length).toBeGreaterThan(0);
            for (const p of problems) expect(p).toMatch(/^ {2}- .+\. Fix: .+/);
            expect(r.stderr).not.toContain("the hostname is");
        }
    });

    it("prints exactly one line of JSON facts when no check fails (problems neutralised)", () => {
        const r = preflightWith({
            NODE_NAME: "node-\"quoted\"\\x",
            IS_CONTROL_PLANE: true,
            KUBERNETES_MINOR: "1.36",
            MIN_CPUS: 1,
            MIN_MEMORY_MB: 1,
            PORTS: [],
            // every check downgraded to a warning, as preflight.ignore does
            IGNORE: ["os", "kernel", "cgroup", "cpu", "memory", "hostname", "command", "systemd", "runtime", "port", "disk"],
            SOURCES: [],
            DISK: [],
        });
        expect(r.status).toBe(0);
        expect(r.stdout.endsWith("\n")).toBe(true);
        expect(r.stdout.trimEnd().split("\n")).toHaveLength(1);
        const facts = JSON.parse(r.stdout);
        expect(facts.node).toBe('node-"quoted"\\x');
        expect(Object.keys(facts)).toEqual(["node", "os", "kernel", "cgroup", "cpus", "memoryMb", "productUuid", "macs", "swapOn", "containerd", "alreadyJoined"]);
        expect(facts.os).toEqual({ id: expect.any(String), versionId: expect.any(String), family: expect.any(String) });
        expect(typeof facts.cpus).toBe("number");
        expect(typeof facts.swapOn).toBe("boolean");
        for (const mac of facts.macs) expect(mac).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
        expect([...facts.macs].sort()).toEqual(facts.macs);
        expect(r.stderr).not.toContain("No such file");
    });

    it("reports a TCP port in use, naming the process", async () => {
        const listener = spawnSync("sh", ["-c", "command -v python3"], { encoding: "utf8" });
        if (listener.status !== 0) return;
        const server = spawn(
            "python3",
            ["-c", "import socket,time\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('127.0.0.1', 0))\ns.listen()\nprint(s.getsockname()[1], flush=True)\ntime.sleep(30)"],
            { stdio: ["ignore", "pipe", "inherit"] },
        );
        await new Promise<void>((resolve, reject) => {
            server.stdout!.once("data", (d: Buffer) => {
                try {
                    const port = d.toString().trim();
                    const r = preflight(hostname, [port]);
                    expect(r.stderr).toMatch(new RegExp(`  - TCP port ${port} is already in use by python3 \\(pid [0-9]+\\)\\. Fix: `));
                    resolve();
                } catch (e) {
                    reject(e);
                } finally {
                    server.kill();
                }
            });
        });
    });

    describe("source reachability (check `source`)", () => {
        const OTHERS = ["os", "kernel", "cgroup", "cpu", "memory", "hostname", "command", "systemd", "runtime", "port"];
        const haveCurl = run("sh", ["-c", "command -v curl"]).status === 0;
        let servers: ReturnType<typeof spawn>[] = [];
        afterEach(() => {
            for (const s of servers) s.kill();
            servers = [];
        });

        /** A local HTTP server in its own process (preflight blocks this one) answering every request with `status`; resolves to its port. */
        function httpServer(status: number): Promise<number> {
            const code = `const s=require("http").createServer((q,r)=>{r.writeHead(${status});r.end()});s.on("connect",(q,c)=>{c.end("HTTP/1.1 ${status} X\\r\\n\\r\\n")});s.listen(0,"127.0.0.1",()=>console.log(s.address().port))`;
            const p = spawn(process.execPath, ["-e", code], { stdio: ["ignore", "pipe", "inherit"] });
            servers.push(p);
            return new Promise((resolve) => p.stdout!.once("data", (d: Buffer) => resolve(Number(d.toString().trim()))));
        }

        /** A port nothing listens on (bound, then closed). */
        function closedPort(): number {
            return Number(run(process.execPath, ["-e", `const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})`]).stdout.trim());
        }

        function check(sources: string[], ignore: string[] = OTHERS) {
            return preflight(hostname, [], false, ignore, sources);
        }

        it("passes when every source answers, directly or as a path on the host", async () => {
            const port = await httpServer(404);
            const r = check([`any\tpackages.localRepository.apt\thttp://127.0.0.1:${port}/debs\t`, `any\tkubeadm.imageRepository\tfile://${tmpRoot}\t`]);
            expect(r.stderr).not.toContain("cannot reach");
            expect(r.status).toBe(0);
        });

        it("names each source that does not answer, all at once, and skips those of the other package family", () => {
            const port = closedPort();
            const r = check([
                `any\tcontainerd.registries[0].mirrors[0]\thttps://127.0.0.1:${port}/v2/\t`,
                `any\tpackages.localRepository.apt\tfile://${tmpRoot}/no-such-dir\t`,
                `rhel\tpackages.localRepository.rpm\thttp://127.0.0.1:${port}/rpms\t`,
            ]);
            expect(r.status).toBe(1);
            expect(r.stderr).toContain(`  - cannot reach containerd.registries[0].mirrors[0] (https://127.0.0.1:${port}/v2/) from this host: no TCP connection to 127.0.0.1 port ${port} within 5 s (DNS, routing or a firewall). Fix: `);
            expect(r.stderr).toContain(`  - cannot reach packages.localRepository.apt (file://${tmpRoot}/no-such-dir) from this host: ${tmpRoot}/no-such-dir does not exist on this host. Fix: `);
            // (a Debian/Ubuntu machine is an apt host: the rpm repository is not its source)
            if (/^ID="?(debian|ubuntu)"?$/m.test(fs.readFileSync("/etc/os-release", "utf8"))) expect(r.stderr).not.toContain("packages.localRepository.rpm");
        });

        it("preflight.ignore [source] turns them into warnings", () => {
            const r = check([`any\tproxy.http\thttp://127.0.0.1:${closedPort()}\t`], [...OTHERS, "source"]);
            expect(r.status).toBe(0);
            expect(r.stderr).toContain("warning: ignored by preflight.ignore (source): cannot reach proxy.http");
        });

        (haveCurl ? it : it.skip)("through a proxy: an answer from the other side passes, the proxy's own 502 fails naming the proxy", async () => {
            const good = await httpServer(200);
            const bad = await httpServer(502);
            const r = check([
                `any\tpackages.kubernetesRepository\thttp://repo.invalid/v1.36/deb/\thttp://127.0.0.1:${good}`,
                `any\tcontainerd.registries[0].mirrors[0]\thttp://mirror.invalid/\thttp://127.0.0.1:${bad}`,
            ]);
            expect(r.status).toBe(1);
            expect(r.stderr).not.toContain("cannot reach packages.kubernetesRepository");
            expect(r.stderr).toContain(`  - cannot reach containerd.registries[0].mirrors[0] (http://mirror.invalid/) from this host: the proxy http://127.0.0.1:${bad} answered HTTP 502. Fix: `);
            // a proxy that does not answer at all: curl's own reason, on one line
            const dead = closedPort();
            const d = check([`any\tpackages.kubernetesRepository\thttp://repo.invalid/\thttp://127.0.0.1:${dead}`]);
            expect(d.stderr).toMatch(new RegExp(`  - cannot reach packages\\.kubernetesRepository \\(http://repo\\.invalid/\\) from this host: no answer through the proxy http://127\\.0\\.0\\.1:${dead} \\([^\\n]*(onnect|refused)[^\\n]*\\)\\. Fix: `));
        });
    });
});

describe("smoke-test.sh: why its pods are not running", () => {
    // smoke_why on its own, with kubectl answering as a cluster whose worker is under disk pressure
    // (the kubelet then rejects every pod, yet the node stays Ready: seen on a CI machine's full disk).
    const text = fs.readFileSync(path.join(SCRIPTS_DIR, "smoke-test.sh"), "utf8");
    const fn = text.match(/^smoke_why\(\) \{\n[\s\S]*?\n\}\n/m)?.[0] ?? "";
    const why = (nodes: string) => run("bash", ["-c", [
        "set -euo pipefail", "SMOKE_NS=ns",
        "kubectl_admin() { case \"$*\" in",
        "  *'get pods'*) printf 'echo-a on w-1: Failed Evicted The node had condition: [DiskPressure]. \\necho-b on w-2: Pending   ContainerCreating \\n' ;;",
        "  *'get events'*) printf 'echo-a: Evicted: The node had condition: [DiskPressure].\\n' ;;",
        `  *'get nodes'*) printf '${nodes}' ;;`,
        "esac; }", fn, "smoke_why app=echo",
    ].join("\n")]);

    test("names each pod's state and reason, the warning events, and every node condition that is wrong (pressure while Ready, NotReady)", () => {
        expect(fn).not.toBe("");
        const r = why("MemoryPressure=False DiskPressure=True PIDPressure=False Ready=True @w-1\\nDiskPressure=False Ready=True @w-2\\nReady=False @cp-1\\n");
        expect(r.status).toBe(0);
        expect(r.stdout).toBe(
            "pods: echo-a on w-1: Failed Evicted The node had condition: [DiskPressure]. ;echo-b on w-2: Pending ContainerCreating ; " +
                "events: echo-a: Evicted: The node had condition: [DiskPressure].; nodes: w-1: DiskPressure=True; cp-1: Ready=False; ",
        );
    });

    test("healthy nodes are said to be healthy", () => {
        expect(why("MemoryPressure=False DiskPressure=False Ready=True @w-1\\n").stdout).toMatch(/ nodes: all Ready, no pressure$/);
    });
});

describe("preflight's disk check (a stub df: the kubelet's filesystems and their free space)", () => {
    let lib: string;
    let bin: string;
    beforeAll(() => {
        lib = installLibrary("preflight-disk-lib").lib;
        bin = fs.mkdtempSync(path.join(os.tmpdir(), "kp-df-"));
    });
    afterAll(() => fs.rmSync(bin, { recursive: true, force: true }));

    /** preflight with every other check neutralised, df answering `size avail mount` for any path, and the DISK items of diskChecks(). */
    function check(disk: string[], df: { size: number; avail: number; mount?: string }, ignore: string[] = []) {
        fs.writeFileSync(path.join(bin, "df"), `#!/bin/sh\necho "Filesystem 1-blocks Used Available Capacity Mounted on"\necho "/dev/x ${df.size} 0 ${df.avail} 0% ${df.mount ?? "/"}"\necho "$*" >>"${bin}/df.args"\n`, { mode: 0o755 });
        fs.rmSync(path.join(bin, "df.args"), { force: true });
        const vars = {
            NODE_NAME: "n1", IS_CONTROL_PLANE: false, KUBERNETES_MINOR: "1.36", MIN_CPUS: 1, MIN_MEMORY_MB: 1, PORTS: [], SOURCES: [], DISK: disk,
            IGNORE: ["os", "kernel", "cgroup", "cpu", "memory", "hostname", "command", "systemd", "runtime", "port", ...ignore],
        };
        const r = run("bash", ["-c", renderScript("preflight", vars, { action: "run", lib }), "preflight"], "", { ...process.env, KP_PATH_PREFIX: bin });
        return { ...r, dfArgs: fs.existsSync(path.join(bin, "df.args")) ? fs.readFileSync(path.join(bin, "df.args"), "utf8") : "" };
    }
    const GiB = 2 ** 30;
    const spec = (evictionHard?: Record<string, string>) => parseClusterConfig(rawConfig(evictionHard ? { kubeadm: { kubelet: { evictionHard } } } : {}), "t");

    it("diskChecks: the kubelet's defaults, or what kubeadm.kubelet.evictionHard sets (a signal it leaves out has no threshold, as in the kubelet, unless mergeDefaultEvictionSettings)", () => {
        expect(diskChecks(spec())).toEqual(["/var/lib/containerd\timagefs.available\t15%\t15\t", "/var/lib/kubelet\tnodefs.available\t10%\t10\t"]);
        expect(diskChecks(spec({ "imagefs.available": "2Gi" }))).toEqual(["/var/lib/containerd\timagefs.available\t2Gi\t\t2147483648"]);
        const merged = parseClusterConfig(rawConfig({ kubeadm: { kubelet: { evictionHard: { "imagefs.available": "2Gi" }, mergeDefaultEvictionSettings: true } } }), "t");
        expect(diskChecks(merged)).toEqual(["/var/lib/containerd\timagefs.available\t2Gi\t\t2147483648", "/var/lib/kubelet\tnodefs.available\t10%\t10\t"]);
        // 0% turns a threshold off; the kubelet ignores 100%
        expect(diskChecks(spec({ "imagefs.available": "0%", "nodefs.available": "100%" }))).toEqual([]);
        expect(diskChecks(spec({ "nodefs.available": "7.5%", "imagefs.available": "500M" }))).toEqual(["/var/lib/containerd\timagefs.available\t500M\t\t500000000", "/var/lib/kubelet\tnodefs.available\t7.5%\t7.5\t"]);
        // a value that is neither a percentage nor a quantity is left to the kubelet
        expect(diskChecks(spec({ "imagefs.available": "lots", "nodefs.available": "10%" }))).toEqual(["/var/lib/kubelet\tnodefs.available\t10%\t10\t"]);
        expect(evictionThreshold("1.5Gi")).toEqual({ bytes: 1.5 * GiB });
        expect(evictionThreshold("100")).toEqual({ bytes: 100 });
    });

    it("a disk under imagefs.available<15% (plus 2 GiB): one problem for the filesystem, naming the directory, the free space, the signal and the setting", () => {
        const r = check(diskChecks(spec()), { size: 100 * GiB, avail: 14 * GiB });

        expect(r.status).toBe(1);
        const problems = r.stderr.split("\n").filter((l) => l.startsWith("  - "));
        expect(problems).toEqual([
            "  - /var/lib/containerd is on / with 14.0 GiB free of 100.0 GiB (14%), under the kubelet's eviction threshold imagefs.available<15% plus 2 GiB for the images and logs the node is about to write: " +
                "the node would be DiskPressure, Ready but refusing every pod that is not critical. Fix: free space on / (or give /var/lib/containerd a filesystem of its own), or set kubeadm.kubelet.evictionHard.imagefs.available to what this disk can keep free",
        ]);
        // before prepare, the directories do not exist: df is asked about their nearest existing parent
        for (const a of r.dfArgs.trim().split("\n")) expect(a).toMatch(/^-P -B1 \//);
    });

    it("enough room passes (17.5 GiB of 100 GiB is above 15% + 2 GiB); so does an absolute threshold that fits", () => {
        const roomy = check(diskChecks(spec()), { size: 100 * GiB, avail: 17.5 * GiB });
        expect({ status: roomy.status, err: roomy.stderr.slice(-300) }).toMatchObject({ status: 0 });
        expect(roomy.stderr).not.toContain("/var/lib/");
        const fits = check(diskChecks(spec({ "imagefs.available": "1Gi", "nodefs.available": "1Gi" })), { size: 100 * GiB, avail: 4 * GiB });
        expect({ status: fits.status, err: fits.stderr.slice(-400) }).toMatchObject({ status: 0 });
        expect(fits.stderr).not.toContain("/var/lib/");
        const tight = check(diskChecks(spec({ "imagefs.available": "1Gi", "nodefs.available": "1Gi" })), { size: 100 * GiB, avail: 2.5 * GiB });
        expect(tight.status).toBe(1);
        expect(tight.stderr).toContain("under the kubelet's eviction threshold imagefs.available<1Gi plus 2 GiB");
    });

    it("preflight.ignore: [disk] makes it a warning", () => {
        const r = check(diskChecks(spec()), { size: 100 * GiB, avail: 1 * GiB }, ["disk"]);
        expect(r.status).toBe(0);
        expect(r.stderr).toContain("ignored by preflight.ignore (disk): /var/lib/containerd is on / with 1.0 GiB free");
    });
});
