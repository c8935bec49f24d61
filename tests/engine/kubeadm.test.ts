/**
 * Real-engine tier, kubeadm half: the REAL kubeadm, kubectl, kube-apiserver
 * and etcd v1.36.4, built from their published Go modules
 * (tests/engine/build-tools.sh), against what the program renders.
 *
 *   - every kubeadm config the program renders passes `kubeadm config validate`;
 *   - kubeadm accepts the program's PKI shape (pre-placed ECDSA P-256 CAs and an
 *     RSA service-account key) and signs everything else with it;
 *   - the bootstrap token made by the program's own `token` step script and
 *     the discovery hash computed by the program let the real `kubeadm join`
 *     discovery succeed against a real API server; a wrong hash or an unknown
 *     token is refused.
 *
 * kube-controller-manager runs only its bootstrap-signer and token-cleaner
 * controllers (what discovery needs); there is no kubelet, so the join stops
 * after discovery and preflight.
 *
 * The Pulumi half (CLI + language host + providers) cannot run here: the Go
 * module proxy does not serve the Node.js language host nor the command, tls,
 * random and kubernetes providers (tests/engine/README.md).
 */
import { ChildProcess, execFileSync, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import { parseClusterConfig, RawConfig } from "../../components/config";
import { discoverySection, renderInitConfig, renderJoinConfig } from "../../components/kubeadm/config";
import { discoveryHash } from "../../components/pki";
import { encodeBundle, library, renderInstallScript, renderScript } from "../../components/scripts";
import { tokenCall } from "../../components/join";
import { SECRET_MARKERS, rawConfig } from "../harness";
import { Availability, tier } from "../tier";

const ROOT = path.resolve(__dirname, "../..");
const BIN = path.join(ROOT, ".cache/engine/bin");
const TOOLS = ["kubeadm", "kubectl", "kube-apiserver", "kube-controller-manager", "etcd"];

function ensureTools(): Availability {
    if (process.platform !== "linux" || process.getuid?.() !== 0) return { ok: false, why: "needs Linux and root" };
    const r = spawnSync("bash", [path.join(__dirname, "build-tools.sh"), "--only", TOOLS.join(","), "--require-all"], {
        encoding: "utf8", timeout: 40 * 60 * 1000,
    });
    process.stdout.write(r.stdout.split("\n").filter((l) => /cached|built|FAILED|total|failed/.test(l)).join("\n") + "\n");
    if (r.status !== 0) return { ok: false, why: `build-tools.sh failed: ${(r.stdout + r.stderr).split("\n").slice(-8).join("\n")}` };
    return { ok: true };
}

const engine = tier("engine tools", "tests/engine/kubeadm.test.ts", ensureTools());

/**
 * The control plane of this test lives in a network namespace it makes
 * (kubeadm refuses a loopback advertise address; nothing else is a target).
 */
const NETNS = `kp-engine-${process.pid}`;
const API_IP = "10.213.250.2";
const API_PORT = 6443;

/** Run a tool from the engine cache; `inNetns` runs it inside the test's network namespace. */
const run = (cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; inNetns?: boolean } = {}) => {
    const bin = cmd.includes("/") ? cmd : path.join(BIN, cmd);
    const [file, argv] = opts.inNetns ? ["ip", ["netns", "exec", NETNS, bin, ...args]] : [bin, args];
    return spawnSync(file, argv, { encoding: "utf8", timeout: 120000, input: opts.input, env: { ...process.env, ...opts.env } });
};

function netns(action: "up" | "down") {
    const sh = (c: string) => spawnSync("sh", ["-c", c], { encoding: "utf8" });
    sh(`ip netns del ${NETNS} 2>/dev/null`);
    if (action === "down") return;
    const r = sh([
        `ip netns add ${NETNS}`,
        `ip -n ${NETNS} link set lo up`,
        // one veth end inside, so the namespace has a real interface and route for kubeadm to pick
        `ip link add kpe${process.pid % 100000} type veth peer name eth0 netns ${NETNS}`,
        `ip -n ${NETNS} addr add ${API_IP}/24 dev eth0`,
        `ip -n ${NETNS} link set eth0 up`,
        `ip -n ${NETNS} route add default dev eth0`,
    ].join(" && "));
    if (r.status !== 0) throw new Error(`cannot make the test network namespace: ${r.stderr}`);
}

/** A PKI of the shape the program's Pki component makes: ECDSA P-256 CAs, an RSA 2048 service-account key. */
function programShapedPki(dir: string) {
    fs.mkdirSync(path.join(dir, "etcd"), { recursive: true });
    const ossl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
    for (const [file, cn] of [["ca", "kubernetes"], ["front-proxy-ca", "front-proxy-ca"], ["etcd/ca", "etcd-ca"]]) {
        ossl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", `${file}.key`);
        ossl("req", "-x509", "-new", "-key", `${file}.key`, "-subj", `/OU=kubeadm-cluster/CN=${cn}`, "-days", "3650",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature,keyEncipherment",
            "-out", `${file}.crt`);
    }
    ossl("genrsa", "-traditional", "-out", "sa.key", "2048");
    ossl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub");
}

/** Parse a multi-document kubeadm file, patch it, render it back. */
function patchDocs(text: string, patch: (doc: Record<string, any>) => void): string {
    return YAML.parseAllDocuments(text).map((d) => {
        const o = d.toJS() as Record<string, any>;
        patch(o);
        return YAML.stringify(o);
    }).join("---\n");
}

engine.describe("real kubeadm v1.36.4 against what the program renders", () => {
    let dir: string;
    const procs: ChildProcess[] = [];
    const raw = (o: Partial<RawConfig> = {}) => rawConfig({ ssh: { user: "root", privateKey: SECRET_MARKERS.sshKey }, ...o });

    beforeAll(() => {
        engine.require();
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "kubeadm-pulumi-engine-"));
    });

    afterAll(async () => {
        for (const p of procs) p.kill("SIGTERM");
        await new Promise((r) => setTimeout(r, 2000));
        for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
        netns("down");
    });

    const VARIANTS: [string, Partial<RawConfig>][] = [
        ["1 CP + 2 workers, defaults", {}],
        ["single host with both roles", { hosts: [{ name: "solo", address: "192.0.2.20", roles: ["control-plane", "worker"] }] }],
        ["3 control planes behind a stable endpoint", {
            hosts: [1, 2, 3].map((i) => ({ name: `cp-${i}`, address: `192.0.2.${10 + i}`, roles: ["control-plane"] })),
            apiServer: { address: "k8s.example.com", extraSans: ["10.9.9.9"] },
        }],
        ["extra args, nftables, kubelet fields, image mirror", {
            kubeadm: {
                imageRepository: "registry.example.com/k8s",
                apiServerExtraArgs: { "audit-log-maxage": "30", "profiling": "false" },
                controllerManagerExtraArgs: [{ name: "node-cidr-mask-size", value: "24" }],
                schedulerExtraArgs: { "profiling": "false" },
                kubeletExtraArgs: { "max-open-files": "100000" },
                kubeProxyMode: "nftables",
                kubelet: { maxPods: 150, failSwapOn: false, serializeImagePulls: false },
            },
        }],
        ["custom subnets and DNS domain", { network: { podSubnet: "10.32.0.0/12", serviceSubnet: "10.112.0.0/16", dnsDomain: "k8s.internal", cni: "calico" } }],
        ["every kind of kubelet field the config check types", {
            kubeadm: {
                kubelet: {
                    maxPods: 200, failSwapOn: false, syncFrequency: "1m30s", evictionHard: { "memory.available": "100Mi", "nodefs.available": "10%" },
                    tlsCipherSuites: ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"], systemReserved: { cpu: "500m", memory: "512Mi" },
                    featureGates: { ImageVolume: true }, cpuCFSQuotaPeriod: "100ms", authentication: { anonymous: { enabled: false } },
                    podPidsLimit: 4096, imageGCHighThresholdPercent: 85, cpuManagerPolicy: "none", allowedUnsafeSysctls: ["net.core.somaxconn"],
                },
            },
        }],
        ["labels and taints on the nodes", {
            hosts: [
                { name: "cp-1", address: "192.0.2.10", roles: ["control-plane"], taints: [{ key: "dedicated", value: "infra", effect: "NoSchedule" }] },
                { name: "worker-1", address: "192.0.2.11", roles: ["worker"], labels: { tier: "web" }, taints: [{ key: "spot", effect: "PreferNoSchedule" }] },
            ],
        }],
    ];

    test("the kubelet and kube-proxy field tables the config check uses are those of the modules kubeadm is built with", () => {
        const { render, typesGoPath } = require("../tools/kubelet-fields");
        const committed = fs.readFileSync(path.join(ROOT, "components/config/component-fields.ts"), "utf8");
        expect(render({ kubelet: typesGoPath("kubelet"), kubeProxy: typesGoPath("kubeProxy") })).toBe(committed);
    });

    test.each(VARIANTS)("init config passes the real `kubeadm config validate`: %s", (_name, o) => {
        const spec = parseClusterConfig(raw(o), "kubeadm-cluster");
        const file = path.join(dir, `init-${_name.replace(/\W+/g, "-")}.yaml`);
        fs.writeFileSync(file, renderInitConfig(spec, spec.hosts[0]));
        const r = run("kubeadm", ["config", "validate", "--config", file]);
        expect({ status: r.status, out: (r.stdout + r.stderr).trim() }).toEqual({ status: 0, out: "ok" });
    });

    test.each(VARIANTS.slice(0, 3))("join configs (worker and control plane) pass `kubeadm config validate`: %s", (_name, o) => {
        const spec = parseClusterConfig(raw(o), "kubeadm-cluster");
        const host = spec.hosts[spec.hosts.length - 1];
        for (const asCp of [false, true]) {
            const file = path.join(dir, `join-${asCp}-${_name.replace(/\W+/g, "-")}.yaml`);
            // what the join script writes: the program's JoinConfiguration + the discovery section
            fs.writeFileSync(file, renderJoinConfig(spec, host, asCp) + discoverySection("10.0.0.10:6443", "abcdef.0123456789abcdef", "sha256:" + "ab".repeat(32)));
            const r = run("kubeadm", ["config", "validate", "--config", file]);
            expect({ asCp, status: r.status, out: (r.stdout + r.stderr).trim() }).toEqual({ asCp, status: 0, out: "ok" });
        }
    });

    test("the check can fail: the real kubeadm rejects an unknown field and a join config without its discovery section", () => {
        const spec = parseClusterConfig(raw(), "kubeadm-cluster");
        const bad = path.join(dir, "bad.yaml");
        fs.writeFileSync(bad, patchDocs(renderInitConfig(spec, spec.hosts[0]), (d) => {
            if (d.kind === "ClusterConfiguration") d.apiServer.certSANz = ["x"];
        }));
        const r = run("kubeadm", ["config", "validate", "--config", bad]);
        expect(r.status).not.toBe(0);
        expect(r.stderr).toMatch(/unknown field "apiServer.certSANz"|certSANz/);
        fs.writeFileSync(bad, renderJoinConfig(spec, spec.hosts[1], false));
        const j = run("kubeadm", ["config", "validate", "--config", bad]);
        expect(j.status).not.toBe(0);
    });

    test("the pause image the program pins is the one kubeadm v1.36.4 expects", () => {
        const { PAUSE_TAG } = require("../../components/versions");
        const r = run("kubeadm", ["config", "images", "list", "--kubernetes-version", "v1.36.4"]);
        expect(r.status).toBe(0);
        expect(r.stdout).toContain(`registry.k8s.io/pause:${PAUSE_TAG["1.36"]}`);
    });

    describe("PKI, token and discovery against a real API server", () => {
        let pki: string;
        let initFile: string;
        let adminConf: string;
        const spec = () => parseClusterConfig(raw(), "kubeadm-cluster");

        beforeAll(async () => {
            pki = path.join(dir, "pki");
            programShapedPki(pki);
            netns("up");
            // The program's init config, pointed at the test namespace's address and a temp certificate dir.
            initFile = path.join(dir, "init.yaml");
            fs.writeFileSync(initFile, patchDocs(renderInitConfig(spec(), spec().hosts[0]), (d) => {
                if (d.kind === "InitConfiguration") d.localAPIEndpoint = { advertiseAddress: API_IP, bindPort: API_PORT };
                if (d.kind === "ClusterConfiguration") {
                    d.controlPlaneEndpoint = `${API_IP}:${API_PORT}`;
                    d.certificatesDir = pki;
                }
            }));
            const before = fs.readFileSync(path.join(pki, "ca.crt"), "utf8");
            for (const args of [["init", "phase", "certs", "all", "--config", initFile],
                ["init", "phase", "kubeconfig", "admin", "--config", initFile, "--kubeconfig-dir", dir],
                ["init", "phase", "kubeconfig", "super-admin", "--config", initFile, "--kubeconfig-dir", dir],
                ["init", "phase", "kubeconfig", "controller-manager", "--config", initFile, "--kubeconfig-dir", dir]]) {
                const r = run("kubeadm", args, { inNetns: true });
                if (r.status !== 0) throw new Error(`kubeadm ${args.join(" ")}: ${r.stderr}`);
            }
            expect(fs.readFileSync(path.join(pki, "ca.crt"), "utf8")).toBe(before);
            adminConf = path.join(dir, "admin.conf");

            const log = fs.openSync(path.join(dir, "control-plane.log"), "a");
            const inNs = (bin: string, args: string[]) => spawn("ip", ["netns", "exec", NETNS, path.join(BIN, bin), ...args], { stdio: ["ignore", log, log] });
            procs.push(inNs("etcd", [
                "--data-dir", path.join(dir, "etcd-data"), "--listen-client-urls", "http://127.0.0.1:2379",
                "--advertise-client-urls", "http://127.0.0.1:2379", "--listen-peer-urls", "http://127.0.0.1:2380",
                "--initial-advertise-peer-urls", "http://127.0.0.1:2380", "--initial-cluster", "default=http://127.0.0.1:2380",
            ]));
            const p = (f: string) => path.join(pki, f);
            procs.push(inNs("kube-apiserver", [
                "--etcd-servers=http://127.0.0.1:2379", `--secure-port=${API_PORT}`, `--bind-address=${API_IP}`, `--advertise-address=${API_IP}`,
                `--client-ca-file=${p("ca.crt")}`, `--tls-cert-file=${p("apiserver.crt")}`, `--tls-private-key-file=${p("apiserver.key")}`,
                `--service-account-key-file=${p("sa.pub")}`, `--service-account-signing-key-file=${p("sa.key")}`,
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local", "--service-cluster-ip-range=10.96.0.0/12",
                "--authorization-mode=Node,RBAC", "--enable-bootstrap-token-auth=true", "--enable-admission-plugins=NodeRestriction",
                `--kubelet-client-certificate=${p("apiserver-kubelet-client.crt")}`, `--kubelet-client-key=${p("apiserver-kubelet-client.key")}`,
                `--requestheader-client-ca-file=${p("front-proxy-ca.crt")}`, `--proxy-client-cert-file=${p("front-proxy-client.crt")}`,
                `--proxy-client-key-file=${p("front-proxy-client.key")}`, "--requestheader-allowed-names=front-proxy-client",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-", "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-username-headers=X-Remote-User", `--cert-dir=${path.join(dir, "apiserver-certs")}`,
            ]));
            // The controller that signs cluster-info for each bootstrap token with
            // usage-bootstrap-signing (what discovery checks), and the one that
            // deletes expired tokens.
            procs.push(inNs("kube-controller-manager", [
                `--kubeconfig=${path.join(dir, "controller-manager.conf")}`, "--controllers=bootstrap-signer-controller,token-cleaner-controller",
                "--bind-address=127.0.0.1", "--secure-port=10257", "--leader-elect=false",
                // as kubeadm runs it: each controller with its own service account (the
                // bootstrap signer's RBAC is bound to kube-system/bootstrap-signer)
                "--use-service-account-credentials=true", `--service-account-private-key-file=${path.join(pki, "sa.key")}`,
                `--root-ca-file=${path.join(pki, "ca.crt")}`,
                `--cert-dir=${path.join(dir, "kcm-certs")}`,
            ]));
            const deadline = Date.now() + 120000;
            for (;;) {
                const r = run("kubectl", ["--kubeconfig", adminConf, "get", "--raw=/readyz"], { inNetns: true });
                if (r.status === 0) break;
                if (Date.now() > deadline) throw new Error(`API server not ready: ${fs.readFileSync(path.join(dir, "control-plane.log"), "utf8").slice(-3000)}`);
                await new Promise((r) => setTimeout(r, 1000));
            }
            // What `kubeadm init` does once the API is up: bind kubeadm:cluster-admins (the
            // group of admin.conf and of the program's own admin certificate) to
            // cluster-admin with the super-admin credential, then kubeadm-config,
            // cluster-info and the bootstrap RBAC.
            const crb = run("kubectl", ["--kubeconfig", path.join(dir, "super-admin.conf"), "create", "clusterrolebinding", "kubeadm:cluster-admins",
                "--clusterrole=cluster-admin", "--group=kubeadm:cluster-admins"], { inNetns: true });
            if (crb.status !== 0) throw new Error(`create clusterrolebinding: ${crb.stderr}`);
            for (const args of [["init", "phase", "upload-config", "kubeadm", "--config", initFile, "--kubeconfig", adminConf],
                ["init", "phase", "upload-config", "kubelet", "--config", initFile, "--kubeconfig", adminConf],
                ["init", "phase", "bootstrap-token", "--config", initFile, "--kubeconfig", adminConf]]) {
                const r = run("kubeadm", args, { inNetns: true });
                if (r.status !== 0) throw new Error(`kubeadm ${args.join(" ")}: ${r.stderr}`);
            }
        }, 10 * 60 * 1000);

        test("kubeadm kept the program's CAs and signed the API server certificate with them, for every address", () => {
            const verify = (ca: string, crt: string) => spawnSync("openssl", ["verify", "-CAfile", path.join(pki, ca), path.join(pki, crt)], { encoding: "utf8" });
            expect(verify("ca.crt", "apiserver.crt").status).toBe(0);
            expect(verify("front-proxy-ca.crt", "front-proxy-client.crt").status).toBe(0);
            expect(verify("etcd/ca.crt", "apiserver-etcd-client.crt").status).toBe(0);
            expect(verify("etcd/ca.crt", "etcd/server.crt").status).toBe(0);
            const text = execFileSync("openssl", ["x509", "-in", path.join(pki, "apiserver.crt"), "-noout", "-text"], { encoding: "utf8" });
            // the kubeconfig address and loopback (certSANs), the node's name and advertise
            // address and the Service IP (added by kubeadm itself)
            for (const san of ["IP Address:192.0.2.10", "IP Address:127.0.0.1", "DNS:cp-1", "DNS:localhost", "IP Address:10.96.0.1", `IP Address:${API_IP}`]) {
                expect(text).toContain(san);
            }
            expect(text).toMatch(/Public Key Algorithm: id-ecPublicKey[\s\S]*NIST CURVE: P-256/);
        });

        test("the admin credential kubeadm writes is in kubeadm:cluster-admins, like the program's own", () => {
            const conf = YAML.parse(fs.readFileSync(adminConf, "utf8"));
            const pem = Buffer.from(conf.users[0].user["client-certificate-data"], "base64").toString();
            const subject = spawnSync("openssl", ["x509", "-noout", "-subject"], { input: pem, encoding: "utf8" }).stdout;
            expect(subject).toMatch(/O\s*=\s*kubeadm:cluster-admins/);
            expect(subject).toMatch(/CN\s*=\s*kubernetes-admin/);
        });

        /** The program's `token` step script for worker-1 (its rendered variables), run for real here from an installed copy of the step scripts. */
        function runTokenStep(token: string) {
            const lib = path.join(dir, "lib", library().sha256.slice(0, 12));
            if (!fs.existsSync(lib)) {
                const install = spawnSync("bash", ["-c", renderInstallScript("cp-1", { action: "create", claim: "cp-1-scripts", lib })], {
                    encoding: "utf8", input: library().archive, env: { ...process.env, KP_STATE_DIR: path.join(dir, "state") },
                });
                expect(install.status).toBe(0);
            }
            const call = tokenCall(spec(), spec().hosts[1]);
            const script = renderScript(call.script, call.vars, { action: "create", claim: "worker-1-token", lib });
            return spawnSync("ip", ["netns", "exec", NETNS, "bash", "-c", script, "worker-1-token"], {
                encoding: "utf8", input: encodeBundle({ token }), timeout: 120000,
                env: { ...process.env, KP_ADMIN_CONF: adminConf, KP_TMPDIR_BASE: dir, KP_PATH_PREFIX: BIN, KP_STATE_DIR: path.join(dir, "state") },
            });
        }

        function joinPreflight(token: string, caHash: string) {
            const file = path.join(dir, `join-${token.slice(0, 6)}.yaml`);
            const s = spec();
            fs.writeFileSync(file, patchDocs(renderJoinConfig(s, s.hosts[1], false) + discoverySection(`${API_IP}:${API_PORT}`, token, caHash), (d) => {
                d.timeouts = { discovery: "20s" };
            }));
            const r = run("kubeadm", ["join", "phase", "preflight", "--config", file, "--ignore-preflight-errors=all", "-v=1"], { inNetns: true });
            fs.writeFileSync(`${file}.log`, r.stdout + r.stderr);
            return r;
        }

        test("the program's token step creates a token the real API accepts; join discovery with the program's CA hash succeeds", async () => {
            const token = "kp1234.0123456789abcdef";
            const t = runTokenStep(token);
            expect({ status: t.status, stderr: t.stderr.slice(-800) }).toMatchObject({ status: 0 });
            expect(t.stdout).toMatch(/bootstrap token kp1234 for worker-1 valid until/);
            expect(t.stdout + t.stderr).not.toContain("0123456789abcdef");
            const secret = run("kubectl", ["--kubeconfig", adminConf, "-n", "kube-system", "get", "secret", "bootstrap-token-kp1234", "-o", "yaml"], { inNetns: true });
            expect(secret.stdout).toContain("type: bootstrap.kubernetes.io/token");
            expect(secret.stdout).not.toContain("last-applied-configuration");
            expect(secret.stdout).toContain("kubeadm-pulumi.io/node: worker-1");

            const hash = discoveryHash(fs.readFileSync(path.join(pki, "ca.crt"), "utf8"));
            const j = joinPreflight(token, hash);
            expect({ status: j.status, out: (j.stdout + j.stderr).slice(-1500) }).toMatchObject({ status: 0 });
            // Discovery validated the API server with the program's hash, then read the
            // cluster's configuration with the program's token.
            expect(j.stdout + j.stderr).toContain(`Hash: ${hash}`);
            expect(j.stdout + j.stderr).toMatch(/Fetching init configuration/);
        });

        test("discovery refuses a CA hash that is not the cluster's", async () => {
            const token = "kp5678.0123456789abcdef";
            expect(runTokenStep(token).status).toBe(0);
            const j = joinPreflight(token, "sha256:" + "00".repeat(32));
            expect(j.status).not.toBe(0);
            expect(j.stdout + j.stderr).toMatch(/pinned|public key/i);
        });

        test("discovery refuses a token the cluster does not know", () => {
            const hash = discoveryHash(fs.readFileSync(path.join(pki, "ca.crt"), "utf8"));
            const j = joinPreflight("zz9999.0123456789abcdef", hash);
            expect(j.status).not.toBe(0);
            expect(j.stdout + j.stderr).toMatch(/could not find a JWS signature in the cluster-info ConfigMap for token ID "zz9999"/);
        });
    });
});
