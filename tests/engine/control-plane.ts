/**
 * A real control plane for engine-tier tests: etcd, kube-apiserver and
 * kube-controller-manager v1.36.4 from the engine cache (.cache/engine/bin),
 * in a network namespace of their own, with a PKI of the program's shape
 * whose certificates and kubeconfigs the real kubeadm writes (the same
 * recipe as tests/engine/kubeadm.test.ts, which keeps its own copy).
 */
import { ChildProcess, execFileSync, spawn, spawnSync, SpawnSyncReturns } from "child_process";
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";

export const ROOT = path.resolve(__dirname, "../..");
export const BIN = path.join(ROOT, ".cache/engine/bin");
export const CONTROL_PLANE_TOOLS = ["kubeadm", "kubectl", "kube-apiserver", "kube-controller-manager", "etcd"];

export interface ControlPlane {
    dir: string;
    apiIp: string;
    /** admin.conf as kubeadm writes it (group kubeadm:cluster-admins, bound to cluster-admin as `kubeadm init` does). */
    adminConf: string;
    pki: string;
    /** Run the real kubectl inside the namespace with admin.conf (or with the `--kubeconfig` given in args). */
    kubectl(args: string[], input?: string): SpawnSyncReturns<string>;
    log(): string;
    stop(): Promise<void>;
}

export interface ControlPlaneOptions {
    /** Network namespace name (unique per process). */
    netns: string;
    /** The API server's address inside it (a /24 of its own). */
    apiIp: string;
    /** kube-controller-manager `--controllers`; none started when empty. */
    controllers: string[];
}

function ossl(dir: string, ...args: string[]) {
    execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
}

/** ECDSA P-256 cluster, front-proxy and etcd CAs and an RSA 2048 service-account key, as the program's Pki component makes them. */
function programShapedPki(dir: string) {
    fs.mkdirSync(path.join(dir, "etcd"), { recursive: true });
    for (const [file, cn] of [["ca", "kubernetes"], ["front-proxy-ca", "front-proxy-ca"], ["etcd/ca", "etcd-ca"]]) {
        ossl(dir, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", `${file}.key`);
        ossl(dir, "req", "-x509", "-new", "-key", `${file}.key`, "-subj", `/OU=kubeadm-cluster/CN=${cn}`, "-days", "3650",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature,keyEncipherment",
            "-out", `${file}.crt`);
    }
    ossl(dir, "genrsa", "-traditional", "-out", "sa.key", "2048");
    ossl(dir, "rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub");
}

function netns(name: string, ip: string, action: "up" | "down") {
    const sh = (c: string) => spawnSync("sh", ["-c", c], { encoding: "utf8" });
    sh(`ip netns del ${name} 2>/dev/null`);
    if (action === "down") return;
    const r = sh([
        `ip netns add ${name}`,
        `ip -n ${name} link set lo up`,
        `ip link add kpa${process.pid % 100000} type veth peer name eth0 netns ${name}`,
        `ip -n ${name} addr add ${ip}/24 dev eth0`,
        `ip -n ${name} link set eth0 up`,
        `ip -n ${name} route add default dev eth0`,
    ].join(" && "));
    if (r.status !== 0) throw new Error(`cannot make the network namespace ${name}: ${r.stderr}`);
}

export async function startControlPlane(dir: string, o: ControlPlaneOptions): Promise<ControlPlane> {
    const pki = path.join(dir, "pki");
    programShapedPki(pki);
    netns(o.netns, o.apiIp, "up");
    const inNs = (bin: string, args: string[], input?: string) =>
        spawnSync("ip", ["netns", "exec", o.netns, path.join(BIN, bin), ...args], { encoding: "utf8", timeout: 120000, input });
    // A minimal kubeadm init config for the certs and kubeconfig phases.
    const initFile = path.join(dir, "init.yaml");
    fs.writeFileSync(initFile, [
        YAML.stringify({ apiVersion: "kubeadm.k8s.io/v1beta4", kind: "InitConfiguration", localAPIEndpoint: { advertiseAddress: o.apiIp, bindPort: 6443 },
            nodeRegistration: { name: "cp-1" } }),
        YAML.stringify({ apiVersion: "kubeadm.k8s.io/v1beta4", kind: "ClusterConfiguration", kubernetesVersion: "v1.36.4", clusterName: "kubeadm-cluster",
            controlPlaneEndpoint: `${o.apiIp}:6443`, certificatesDir: pki, networking: { serviceSubnet: "10.96.0.0/12", podSubnet: "10.244.0.0/16" } }),
    ].join("---\n"));
    for (const args of [["init", "phase", "certs", "all", "--config", initFile],
        ...["admin", "super-admin", "controller-manager"].map((k) => ["init", "phase", "kubeconfig", k, "--config", initFile, "--kubeconfig-dir", dir])]) {
        const r = inNs("kubeadm", args);
        if (r.status !== 0) throw new Error(`kubeadm ${args.join(" ")}: ${r.stderr}`);
    }
    const logFile = path.join(dir, "control-plane.log");
    const log = fs.openSync(logFile, "a");
    const procs: ChildProcess[] = [];
    const start = (bin: string, args: string[]) => procs.push(spawn("ip", ["netns", "exec", o.netns, path.join(BIN, bin), ...args], { stdio: ["ignore", log, log] }));
    const p = (f: string) => path.join(pki, f);
    start("etcd", [
        "--data-dir", path.join(dir, "etcd-data"), "--listen-client-urls", "http://127.0.0.1:2379",
        "--advertise-client-urls", "http://127.0.0.1:2379", "--listen-peer-urls", "http://127.0.0.1:2380",
        "--initial-advertise-peer-urls", "http://127.0.0.1:2380", "--initial-cluster", "default=http://127.0.0.1:2380",
    ]);
    start("kube-apiserver", [
        "--etcd-servers=http://127.0.0.1:2379", "--secure-port=6443", `--bind-address=${o.apiIp}`, `--advertise-address=${o.apiIp}`,
        `--client-ca-file=${p("ca.crt")}`, `--tls-cert-file=${p("apiserver.crt")}`, `--tls-private-key-file=${p("apiserver.key")}`,
        `--service-account-key-file=${p("sa.pub")}`, `--service-account-signing-key-file=${p("sa.key")}`,
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local", "--service-cluster-ip-range=10.96.0.0/12",
        // kubeadm's own flags: Node,RBAC authorization and NodeRestriction on top of the default admission plugins (PodSecurity among them)
        "--authorization-mode=Node,RBAC", "--enable-bootstrap-token-auth=true", "--enable-admission-plugins=NodeRestriction",
        `--kubelet-client-certificate=${p("apiserver-kubelet-client.crt")}`, `--kubelet-client-key=${p("apiserver-kubelet-client.key")}`,
        `--requestheader-client-ca-file=${p("front-proxy-ca.crt")}`, `--proxy-client-cert-file=${p("front-proxy-client.crt")}`,
        `--proxy-client-key-file=${p("front-proxy-client.key")}`, "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-", "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-username-headers=X-Remote-User", `--cert-dir=${path.join(dir, "apiserver-certs")}`,
    ]);
    if (o.controllers.length > 0) {
        start("kube-controller-manager", [
            `--kubeconfig=${path.join(dir, "controller-manager.conf")}`, `--controllers=${o.controllers.join(",")}`,
            "--bind-address=127.0.0.1", "--secure-port=10257", "--leader-elect=false",
            "--use-service-account-credentials=true", `--service-account-private-key-file=${p("sa.key")}`,
            `--root-ca-file=${p("ca.crt")}`, `--cert-dir=${path.join(dir, "kcm-certs")}`,
        ]);
    }
    const adminConf = path.join(dir, "admin.conf");
    const kubectl = (args: string[], input?: string) => {
        const withConf = args.some((a) => a === "--kubeconfig" || a.startsWith("--kubeconfig=")) ? args : ["--kubeconfig", adminConf, ...args];
        return inNs("kubectl", withConf, input);
    };
    const cp: ControlPlane = {
        dir, apiIp: o.apiIp, adminConf, pki, kubectl,
        log: () => fs.readFileSync(logFile, "utf8"),
        async stop() {
            for (const c of procs) c.kill("SIGTERM");
            await new Promise((r) => setTimeout(r, 2000));
            for (const c of procs) if (c.exitCode === null) c.kill("SIGKILL");
            netns(o.netns, o.apiIp, "down");
        },
    };
    const deadline = Date.now() + 120000;
    for (;;) {
        if (kubectl(["get", "--raw=/readyz"]).status === 0) break;
        if (Date.now() > deadline) {
            await cp.stop();
            throw new Error(`API server not ready: ${cp.log().slice(-3000)}`);
        }
        await new Promise((r) => setTimeout(r, 1000));
    }
    // What `kubeadm init` does first: admin.conf's group gets cluster-admin (made with the super-admin credential).
    const crb = kubectl(["--kubeconfig", path.join(dir, "super-admin.conf"), "create", "clusterrolebinding", "kubeadm:cluster-admins",
        "--clusterrole=cluster-admin", "--group=kubeadm:cluster-admins"]);
    if (crb.status !== 0) throw new Error(`create clusterrolebinding: ${crb.stderr}`);
    return cp;
}
