import { spawn, spawnSync, SpawnSyncReturns } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

import {
    encodeBundle,
    remoteCommand,
    renderScript,
    SCRIPT_DELIMITER,
    SCRIPT_NAMES,
    SCRIPT_VARS,
    ScriptName,
    ScriptVars,
    shellQuote,
} from "../components/scripts";

const LIB = path.join(__dirname, "..", "components", "scripts", "lib.sh");

// ---------------------------------------------------------------------------
// Realistic variables for every script variant.

const CONTAINERD_CONFIG = `version = 3

[plugins."io.containerd.cri.v1.images".pinned_images]
  sandbox = "registry.k8s.io/pause:3.10.2"

[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

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
  criSocket: unix:///run/containerd/containerd.sock
localAPIEndpoint:
  advertiseAddress: 10.0.0.10
  bindPort: 6443
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.36.4
controlPlaneEndpoint: "10.0.0.10:6443"
networking:
  podSubnet: 10.244.0.0/16
  serviceSubnet: 10.96.0.0/12
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: systemd
`;

const JOIN_CONFIG = `apiVersion: kubeadm.k8s.io/v1beta4
kind: JoinConfiguration
discovery:
  bootstrapToken:
    apiServerEndpoint: "10.0.0.10:6443"
    token: "__BOOTSTRAP_TOKEN__"
    caCertHashes:
      - "sha256:0c2c5f5b2d3c0c1e4c9f0d4b5a6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f80"
nodeRegistration:
  name: worker-1
`;

function prepareVars(controlPlane: boolean, local: { apt?: string; rpm?: string; keyUrl?: string } = {}): ScriptVars {
    return {
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
    };
}

const CP_PORTS = ["6443", "2379", "2380", "10250", "10257", "10259", "10256"];
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
        vars: { NODE_NAME: "cp-1", IS_CONTROL_PLANE: true, KUBERNETES_MINOR: "1.36", MIN_CPUS: 2, MIN_MEMORY_MB: 1700, PORTS: CP_PORTS, IGNORE: [] },
    },
    {
        id: "preflight-worker",
        name: "preflight",
        vars: { NODE_NAME: "worker-1", IS_CONTROL_PLANE: false, KUBERNETES_MINOR: "1.36", MIN_CPUS: 2, MIN_MEMORY_MB: 1700, PORTS: WORKER_PORTS, IGNORE: ["cgroup", "port"] },
    },
    { id: "prepare-debian-control-plane", name: "prepare-debian", vars: prepareVars(true) },
    { id: "prepare-debian-worker", name: "prepare-debian", vars: prepareVars(false) },
    { id: "prepare-rhel-control-plane", name: "prepare-rhel", vars: prepareVars(true) },
    { id: "prepare-rhel-worker", name: "prepare-rhel", vars: prepareVars(false) },
    { id: "prepare-debian-local-repo", name: "prepare-debian", vars: prepareVars(false, { apt: "http://10.0.0.5/debs ./" }) },
    { id: "prepare-debian-local-repo-signed", name: "prepare-debian", vars: prepareVars(true, { apt: "http://10.0.0.5/debs stable main", keyUrl: "http://10.0.0.5/key.gpg" }) },
    { id: "prepare-rhel-local-repo", name: "prepare-rhel", vars: prepareVars(false, { rpm: "http://10.0.0.5/rpms/", keyUrl: "http://10.0.0.5/key.gpg" }) },
    { id: "init", name: "init", vars: { NODE_NAME: "cp-1", KUBEADM_CONFIG, API_ENDPOINT: "10.0.0.10:6443" } },
    { id: "join-worker", name: "join", vars: { NODE_NAME: "worker-1", IS_CONTROL_PLANE: false, JOIN_CONFIG, TOKEN_TTL_SECONDS: 86400 } },
    { id: "join-control-plane", name: "join", vars: { NODE_NAME: "cp-2", IS_CONTROL_PLANE: true, JOIN_CONFIG, TOKEN_TTL_SECONDS: 86400 } },
    { id: "token", name: "token", vars: { TOKEN_ID: "abcdef", TOKEN_TTL_SECONDS: 3600, NODE_NAME: "worker-1" } },
    { id: "forget-node", name: "forget-node", vars: { NODE_NAME: "worker-1", TOKEN_ID: "abcdef" } },
    { id: "node-ready-labels", name: "node-ready", vars: { NODE_NAME: "worker-1", NODE_LABELS: ["node-role.kubernetes.io/worker=", "tier=web"], TOKEN_ID: "abc123" } },
    { id: "node-ready-no-labels", name: "node-ready", vars: { NODE_NAME: "worker-1", NODE_LABELS: [], TOKEN_ID: "abc123" } },
    { id: "drain", name: "drain", vars: { NODE_NAME: "worker-1", DRAIN_TIMEOUT_SECONDS: 300 } },
    { id: "reset", name: "reset", vars: { NODE_NAME: "worker-1" } },
];

// ---------------------------------------------------------------------------
// Helpers.

function run(cmd: string, args: string[], input?: string, env?: NodeJS.ProcessEnv): SpawnSyncReturns<string> {
    const r = spawnSync(cmd, args, { input: input ?? "", encoding: "utf8", env: env ?? process.env, timeout: 120_000 });
    if (r.error) throw r.error;
    return r;
}

/** Run bash with lib.sh sourced (under the same options as a rendered script), then `code`. */
function withLib(code: string, input?: string): SpawnSyncReturns<string> {
    const script = `set -euo pipefail\nshopt -s inherit_errexit\nsource ${shellQuote(LIB)}\n${code}\n`;
    return run("bash", ["-c", script, "lib-test"], input);
}

const shellcheckPresent = run("sh", ["-c", "command -v shellcheck"]).status === 0;
if (!shellcheckPresent) {
    if (process.env.CI === "true") {
        throw new Error("shellcheck is not installed, and the script lint is mandatory in CI");
    }
    // eslint-disable-next-line no-console
    console.warn("shellcheck is not installed: skipping the shellcheck tests of components/scripts");
}
const itShellcheck = shellcheckPresent ? it : it.skip;

function shellcheck(text: string, shell: "bash" | "sh"): string {
    const r = run("shellcheck", ["-s", shell, "-f", "gcc", "-"], text);
    return r.status === 0 ? "" : `${r.stdout}${r.stderr}` || `shellcheck exited ${r.status}`;
}

let tmpRoot: string;
beforeAll(() => {
    tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), "kubeadm-pulumi-scripts-"));
});
afterAll(() => {
    fs.rmSync(tmpRoot, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------

describe("renderScript", () => {
    it("declares the variables of every script", () => {
        expect([...SCRIPT_NAMES].sort()).toEqual(
            ["drain", "forget-node", "init", "join", "node-ready", "preflight", "prepare-debian", "prepare-rhel", "reset", "token"].sort(),
        );
        for (const name of SCRIPT_NAMES) {
            expect(VARIANTS.some((v) => v.name === name)).toBe(true);
        }
    });

    it.each(VARIANTS.map((v) => [v.id, v] as const))("renders %s deterministically", (_id, v) => {
        const a = renderScript(v.name, v.vars);
        const b = renderScript(v.name, { ...Object.fromEntries(Object.entries(v.vars).reverse()) });
        expect(a).toBe(b);
        expect(a.startsWith("#!/usr/bin/env bash\n")).toBe(true);
        expect(a).toContain("\nset -euo pipefail\n");
        expect(a).not.toMatch(/^\s*set\s+(-[a-z]*x|-o\s+xtrace)/m);
        expect(a).toMatchSnapshot();
    });

    itShellcheck.each(VARIANTS.map((v) => [v.id, v] as const))("%s passes shellcheck", (_id, v) => {
        expect(shellcheck(renderScript(v.name, v.vars), "bash")).toBe("");
    });

    it("writes the header variables sorted, quoted, arrays and booleans as documented", () => {
        const s = renderScript("node-ready", { NODE_NAME: "it's", NODE_LABELS: ["a=b", "c=d"], TOKEN_ID: "abc123" });
        expect(s).toContain("readonly -a NODE_LABELS=('a=b' 'c=d')\nreadonly NODE_NAME='it'\\''s'\n");
        const p = renderScript("preflight", VARIANTS[0].vars);
        expect(p).toContain("readonly IS_CONTROL_PLANE='true'\n");
        expect(p).toContain("readonly MIN_CPUS='2'\n");
        expect(renderScript("node-ready", { NODE_NAME: "n", NODE_LABELS: [], TOKEN_ID: "abc123" })).toContain("readonly -a NODE_LABELS=()\n");
    });

    it("round-trips awkward values through real bash", () => {
        const nasty = `it's "quoted" $HOME \`id\` $(id) \\ back\nslash\n\ttab ; rm -rf / # '' end\n`;
        const script = renderScript("token", { TOKEN_ID: nasty, TOKEN_TTL_SECONDS: 1, NODE_NAME: "n" });
        const header = script.split("\nset -euo pipefail\n")[1].split("\n\n")[0];
        const r = run("bash", ["-c", `${header}\nprintf '%s' "$TOKEN_ID"`]);
        expect(r.stderr).toBe("");
        expect(r.stdout).toBe(nasty);

        const arr = ["a b", "it's", "$x", "new\nline", ""];
        const s2 = renderScript("node-ready", { NODE_NAME: "n", NODE_LABELS: arr, TOKEN_ID: "abc123" });
        const h2 = s2.split("\nset -euo pipefail\n")[1].split("\n\n")[0];
        const r2 = run("bash", ["-c", `${h2}\nprintf '<%s>' "\${NODE_LABELS[@]}"`]);
        expect(r2.stdout).toBe(arr.map((a) => `<${a}>`).join(""));
    });

    it("throws on missing, unknown and mistyped variables", () => {
        expect(() => renderScript("reset", {})).toThrow(/missing var\(s\) NODE_NAME/);
        expect(() => renderScript("reset", { NODE_NAME: "a", EXTRA: "b" })).toThrow(/unknown var\(s\) EXTRA/);
        expect(() => renderScript("drain", { NODE_NAME: "a", DRAIN_TIMEOUT_SECONDS: "soon" })).toThrow(/non-negative integer/);
        expect(() => renderScript("drain", { NODE_NAME: "a", DRAIN_TIMEOUT_SECONDS: -1 })).toThrow(/non-negative integer/);
        expect(() => renderScript("join", { NODE_NAME: "a", IS_CONTROL_PLANE: "true", JOIN_CONFIG, TOKEN_TTL_SECONDS: 86400 })).toThrow(/boolean/);
        expect(() => renderScript("node-ready", { NODE_NAME: "a", NODE_LABELS: "x=y", TOKEN_ID: "abc123" })).toThrow(/array/);
        expect(() => renderScript("reset", { NODE_NAME: ["a"] })).toThrow(/string/);
        expect(() => renderScript("reset", { NODE_NAME: "a\0b" })).toThrow(/NUL/);
        expect(() => renderScript("nope" as ScriptName, {})).toThrow(/unknown script/);
    });

    it("uses every declared variable in its script body", () => {
        for (const name of SCRIPT_NAMES) {
            const v = VARIANTS.find((x) => x.name === name)!;
            const body = renderScript(name, v.vars).split("\nset -euo pipefail\n")[1];
            for (const k of Object.keys(SCRIPT_VARS[name])) {
                const uses = body.split("\n").filter((l) => !l.startsWith("readonly ") && l.includes(k));
                expect({ name, k, used: uses.length > 0 }).toEqual({ name, k, used: true });
            }
        }
    });
});

describe("remoteCommand", () => {
    const script = renderScript("reset", { NODE_NAME: "worker-1" });

    it.each([
        ["root", "root"],
        ["non-root", "ubuntu"],
    ])("wraps the %s variant as documented", (_label, user) => {
        const cmd = remoteCommand(script, { user, step: "reset-worker-1" });
        expect(cmd).toContain(`bash -c "$(cat <<'${SCRIPT_DELIMITER}'\n#!/usr/bin/env bash\n`);
        expect(cmd).toContain(`\n${SCRIPT_DELIMITER}\n)" 'reset-worker-1'`);
        if (user === "root") {
            expect(cmd.startsWith("bash -c ")).toBe(true);
            expect(cmd).not.toContain("sudo");
        } else {
            expect(cmd).toContain("if ! sudo -n true");
            expect(cmd).toContain("user ubuntu cannot run sudo without a password on this host: add '\\''ubuntu ALL=(ALL) NOPASSWD:ALL'\\'' to /etc/sudoers.d/ubuntu");
            expect(cmd).toContain(`sudo -n bash -c "$(cat <<'${SCRIPT_DELIMITER}'`);
        }
    });

    itShellcheck.each(
        VARIANTS.flatMap((v) => [
            [`${v.id} as root`, v, "root"] as const,
            [`${v.id} as ubuntu`, v, "ubuntu"] as const,
        ]),
    )("%s: the wrapped command passes shellcheck -s sh", (_id, v, user) => {
        expect(shellcheck(remoteCommand(renderScript(v.name, v.vars), { user, step: v.id }), "sh")).toBe("");
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
        expect(r.stderr).toBe(
            "user deploy cannot run sudo without a password on this host: add 'deploy ALL=(ALL) NOPASSWD:ALL' to /etc/sudoers.d/deploy (visudo -f /etc/sudoers.d/deploy)\n",
        );
    });

    it("runs the script under sudo -n with stdin when sudo works", () => {
        const bin = fs.mkdtempSync(path.join(tmpRoot, "fake-sudo-"));
        // A stand-in sudo that checks -n and runs the rest.
        fs.writeFileSync(path.join(bin, "sudo"), '#!/bin/sh\n[ "$1" = -n ] || exit 9\nshift\nexec "$@"\n', { mode: 0o755 });
        const cmd = remoteCommand("cat\n", { user: "deploy", step: "s" });
        const r = run("sh", ["-c", cmd], "via sudo\n", { ...process.env, PATH: `${bin}:${process.env.PATH}` });
        expect(r.stdout).toBe("via sudo\n");
        expect(r.status).toBe(0);
    });

    it("rejects a script containing the delimiter line, bad users and bad steps", () => {
        expect(() => remoteCommand(`echo a\n${SCRIPT_DELIMITER}\necho b\n`, { user: "root", step: "s" })).toThrow(/delimiter/);
        expect(() => remoteCommand(`echo ${SCRIPT_DELIMITER}\n`, { user: "root", step: "s" })).not.toThrow();
        expect(() => remoteCommand("true", { user: "x; rm -rf /", step: "s" })).toThrow(/user/);
        expect(() => remoteCommand("true", { user: "root", step: "a b" })).toThrow(/step/);
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

describe("lib.sh helpers", () => {
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
// preflight, for real, on this machine.

describe("preflight on this machine", () => {
    const hostname = run("sh", ["-c", "hostname 2>/dev/null || cat /proc/sys/kernel/hostname"]).stdout.trim().split(".")[0].toLowerCase();
    const cgroupFs = run("stat", ["-fc", "%T", "/sys/fs/cgroup"]).stdout.trim();

    function preflight(nodeName: string, ports: string[], controlPlane = false, ignore: string[] = []) {
        const script = renderScript("preflight", {
            NODE_NAME: nodeName,
            IS_CONTROL_PLANE: controlPlane,
            KUBERNETES_MINOR: "1.36",
            MIN_CPUS: 2,
            MIN_MEMORY_MB: 1700,
            PORTS: ports,
            IGNORE: ignore,
        });
        return run("bash", ["-c", script, "preflight"]);
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
            expect(Object.keys(facts).sort()).toEqual(
                ["alreadyJoined", "cgroup", "containerd", "cpus", "kernel", "macs", "memoryMb", "node", "os", "productUuid", "swapOn"].sort(),
            );
            expect(facts.node).toBe(hostname);
            expect(Object.keys(facts.os).sort()).toEqual(["family", "id", "versionId"]);
            expect(facts.cgroup).toBe("v2");
            expect(Array.isArray(facts.macs)).toBe(true);
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
            // eslint-disable-next-line no-console
            console.log(`preflight on this machine reported:\n${problems.join("\n")}`);
        }
    });

    it("prints exactly one line of JSON facts when no check fails (problems neutralised)", () => {
        const script = renderScript("preflight", {
            NODE_NAME: "node-\"quoted\"\\x",
            IS_CONTROL_PLANE: true,
            KUBERNETES_MINOR: "1.36",
            MIN_CPUS: 1,
            MIN_MEMORY_MB: 1,
            PORTS: [],
            // every check downgraded to a warning, as preflight.ignore does
            IGNORE: ["os", "kernel", "cgroup", "cpu", "memory", "hostname", "command", "systemd", "runtime", "port"],
        });
        const r = run("bash", ["-c", script, "preflight"]);
        expect(r.status).toBe(0);
        expect(r.stdout.endsWith("\n")).toBe(true);
        expect(r.stdout.trimEnd().split("\n")).toHaveLength(1);
        const facts = JSON.parse(r.stdout);
        expect(facts.node).toBe('node-"quoted"\\x');
        expect(Object.keys(facts)).toEqual(["node", "os", "kernel", "cgroup", "cpus", "memoryMb", "productUuid", "macs", "swapOn", "containerd", "alreadyJoined"]);
        expect(facts.os).toEqual({ id: expect.any(String), versionId: expect.any(String), family: expect.any(String) });
        expect(typeof facts.cpus).toBe("number");
        expect(typeof facts.memoryMb).toBe("number");
        expect(typeof facts.swapOn).toBe("boolean");
        expect(typeof facts.alreadyJoined).toBe("boolean");
        expect(typeof facts.productUuid).toBe("string");
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
});
