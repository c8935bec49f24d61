import {
    cidrContains,
    cidrNetwork,
    cidrsOverlap,
    ConfigError,
    ConfigProblem,
    DEFAULT_API_SERVER_PORT,
    DEFAULT_CNI,
    DEFAULT_DNS_DOMAIN,
    DEFAULT_POD_SUBNET,
    DEFAULT_PROXY_MODE,
    DEFAULT_SERVICE_SUBNET,
    DEFAULT_SSH_PORT,
    DEFAULT_SSH_USER,
    formatCidr,
    formatIp,
    hasHostBits,
    parseCidr,
    parseClusterConfig,
    parseIp,
    parseIPv4,
    parseIPv6,
    privateKeyProblem,
    RawConfig,
} from "../components/config";
import { ParseOptions, configWarnings } from "../components/config";
import { ClusterSpec } from "../components/model";
import { openSshPrivateKey } from "./harness";
import { DEFAULT_IMAGE_REPOSITORY, DEFAULT_KUBERNETES_VERSION, GATEWAY_API } from "../components/versions";
import { planSteps, renderProblems } from "../components/plan";

/**
 * PEM armour built at test time, so the repository holds no private-key block
 * (the bodies used here are placeholders, not key material).
 */
const pemBegin = (label: string) => `-----BEGIN ${label}-----`;
const pemEnd = (label: string) => `-----END ${label}-----`;
const pem = (label: string, ...body: string[]) => [pemBegin(label), ...body, pemEnd(label)].join("\n");

/** A real OpenSSH private key made for this test process, with the given cipher (see the harness). */
const fakeKey = (cipher = "none") => openSshPrivateKey(cipher);

const KEY = fakeKey();

/** An OpenSSH public key line of `type` (the blob holds the type and 32 filler bytes: enough for the config check). */
function pubKey(type: string, comment = ""): string {
    const t = Buffer.from(type, "latin1");
    const len = Buffer.alloc(4);
    len.writeUInt32BE(t.length);
    const body = Buffer.concat([len, t, Buffer.alloc(4, 0), Buffer.alloc(32, 7)]);
    return `${type} ${body.toString("base64")}${comment ? ` ${comment}` : ""}`;
}
const HOST_KEY = pubKey("ssh-ed25519");
const ECDSA_KEY = pubKey("ecdsa-sha2-nistp256");

/** The smallest valid config: one host with both roles and the SSH key. */
function minimal(): RawConfig {
    return {
        hosts: [{ name: "cp-1", address: "192.0.2.10", roles: ["control-plane", "worker"] }],
        ssh: { privateKey: KEY },
    };
}

/** One control plane and two workers, the shape most bad-config cases start from. */
function threeHosts(): RawConfig {
    return {
        hosts: [
            { name: "cp-1", address: "192.0.2.10", internalAddress: "10.0.0.10", roles: ["control-plane"] },
            { name: "worker-1", address: "192.0.2.11", internalAddress: "10.0.0.11", roles: ["worker"] },
            { name: "worker-2", address: "192.0.2.12", internalAddress: "10.0.0.12", roles: ["worker"] },
        ],
        ssh: { user: "ubuntu", privateKey: KEY },
    };
}

type Mutable = Record<string, unknown>;

/** threeHosts() with `change` applied to a deep copy. */
function withChange(change: (c: Mutable & { hosts: Mutable[] }) => void): RawConfig {
    const config = JSON.parse(JSON.stringify(threeHosts())) as Mutable & { hosts: Mutable[] };
    change(config);
    return config as RawConfig;
}

function problemsOf(raw: RawConfig): ConfigProblem[] {
    try {
        parseClusterConfig(raw, "demo");
    } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as ConfigError).problems;
    }
    throw new Error("expected a ConfigError, but the config was accepted");
}

function host(c: { hosts: Mutable[] }, i: number): Mutable {
    const h = c.hosts[i];
    if (!h) throw new Error(`no host ${i}`);
    return h;
}

// [description, config, exact path, message substring]
const badConfigs: [string, RawConfig, string, string][] = [
    ["hosts missing", { ssh: { privateKey: KEY } }, "hosts", "no hosts are configured"],
    ["hosts is a map", { hosts: { "cp-1": { address: "192.0.2.10" } }, ssh: { privateKey: KEY } }, "hosts", "must be a list of hosts"],
    ["hosts empty", { hosts: [], ssh: { privateKey: KEY } }, "hosts", "the list is empty"],
    ["host is a string", withChange((c) => ((c.hosts as unknown[])[1] = "worker-1")), "hosts[1]", "must be an object with name, address and roles"],
    ["name missing", withChange((c) => delete host(c, 1)["name"]), "hosts[1].name", "is required"],
    [
        "name with a space",
        withChange((c) => (host(c, 0)["name"] = "cp 1")),
        "hosts[0].name",
        `"cp 1" is not a valid node name: use lowercase letters, digits and '-', starting and ending with a letter or digit (e.g. "cp-1")`,
    ],
    ["name in capitals", withChange((c) => (host(c, 0)["name"] = "CP_1")), "hosts[0].name", `(e.g. "cp-1")`],
    ["name too long", withChange((c) => (host(c, 2)["name"] = "w".repeat(64))), "hosts[2].name", "node names are at most 63"],
    ["duplicate name", withChange((c) => (host(c, 2)["name"] = "worker-1")), "hosts[2].name", "already the name of hosts[1]"],
    ["address missing", withChange((c) => delete host(c, 0)["address"]), "hosts[0].address", "is required"],
    ["bad IPv4 address", withChange((c) => (host(c, 1)["address"] = "192.0.2.300")), "hosts[1].address", "not a valid IPv4 address"],
    ["bad DNS address", withChange((c) => (host(c, 1)["address"] = "worker_1.example.com")), "hosts[1].address", "not a valid DNS name"],
    ["host:port address", withChange((c) => (host(c, 1)["address"] = "worker-1:2222")), "hosts[1].address", "put the port in `hosts[1].port`"],
    ["user@host address", withChange((c) => (host(c, 1)["address"] = "ubuntu@worker-1")), "hosts[1].address", "put the user name in `user`"],
    ["bad IPv6 address", withChange((c) => (host(c, 1)["address"] = "2001:db8:::1")), "hosts[1].address", "not a valid IPv6 address"],
    ["duplicate address", withChange((c) => (host(c, 2)["address"] = "192.0.2.11")), "hosts[2].address", "already used by hosts[1]"],
    [
        "internalAddress equal to another host's address",
        withChange((c) => (host(c, 2)["internalAddress"] = "192.0.2.10")),
        "hosts[2].internalAddress",
        "already used by hosts[0]",
    ],
    ["internalAddress is a DNS name", withChange((c) => (host(c, 0)["internalAddress"] = "cp-1.lan")), "hosts[0].internalAddress", "is not an IP address"],
    ["internalAddress is loopback", withChange((c) => (host(c, 0)["internalAddress"] = "127.0.0.1")), "hosts[0].internalAddress", "loopback"],
    ["role master", withChange((c) => (host(c, 0)["roles"] = ["master"])), "hosts[0].roles[0]", `use "control-plane"`],
    ["role typo", withChange((c) => (host(c, 1)["roles"] = ["wroker"])), "hosts[1].roles[0]", `did you mean "worker"?`],
    ["roles empty", withChange((c) => (host(c, 1)["roles"] = [])), "hosts[1].roles", "is empty"],
    ["roles not a list", withChange((c) => (host(c, 1)["roles"] = "worker")), "hosts[1].roles", "must be a list of roles"],
    ["roles missing", withChange((c) => delete host(c, 1)["roles"]), "hosts[1].roles", "is required"],
    ["no control plane", withChange((c) => (host(c, 0)["roles"] = ["worker"])), "hosts", "no host has the control-plane role"],
    ["bad per-host user", withChange((c) => (host(c, 1)["user"] = "Ubuntu Admin")), "hosts[1].user", "is not a valid user name"],
    ["per-host port out of range", withChange((c) => (host(c, 1)["port"] = 70000)), "hosts[1].port", "from 1 to 65535"],
    ["per-host port not a number", withChange((c) => (host(c, 1)["port"] = "ssh")), "hosts[1].port", "not a valid port"],
    ["host key typo", withChange((c) => (host(c, 0)["internalAdress"] = "10.0.0.9")), "hosts[0].internalAdress", `did you mean "internalAddress"?`],
    ["host key alias", withChange((c) => (host(c, 0)["ip"] = "10.0.0.9")), "hosts[0].ip", `did you mean "address"?`],
    ["ssh missing", withChange((c) => delete c["ssh"]), "ssh.privateKey", "pulumi config set --secret --path ssh.privateKey < ~/.ssh/id_ed25519"],
    ["ssh not an object", withChange((c) => (c["ssh"] = "root")), "ssh", "must be an object with user, port and privateKey"],
    ["ssh key missing", withChange((c) => (c["ssh"] = { user: "ubuntu" })), "ssh.privateKey", "no SSH private key is set"],
    ["ssh key malformed", withChange((c) => (c["ssh"] = { privateKey: "hunter2" })), "ssh.privateKey", "does not look like a private key"],
    ["ssh key is a public key", withChange((c) => (c["ssh"] = { privateKey: "ssh-ed25519 AAAAC3Nza me@laptop" })), "ssh.privateKey", "is a public key"],
    ["ssh key is a path", withChange((c) => (c["ssh"] = { privateKey: "~/.ssh/id_ed25519" })), "ssh.privateKey", "looks like a file path"],
    ["ssh key truncated", withChange((c) => (c["ssh"] = { privateKey: KEY.slice(0, 80) })), "ssh.privateKey", "is incomplete"],
    ["ssh key with passphrase", withChange((c) => (c["ssh"] = { privateKey: fakeKey("aes256-ctr") })), "ssh.privateKey", "passphrase"],
    ["ssh key empty", withChange((c) => (c["ssh"] = { privateKey: "  " })), "ssh.privateKey", "is empty"],
    ["ssh port", withChange((c) => (c["ssh"] = { port: 0, privateKey: KEY })), "ssh.port", "from 1 to 65535 (e.g. 22)"],
    ["ssh user", withChange((c) => (c["ssh"] = { user: "-oProxyCommand=x", privateKey: KEY })), "ssh.user", "not a valid user name"],
    ["ssh key typo", withChange((c) => (c["ssh"] = { usr: "ubuntu", privateKey: KEY })), "ssh.usr", `did you mean "user"?`],
    // bastions, per-host keys, the agent, pinned host keys
    ["ssh.useAgent not a boolean", withChange((c) => (c["ssh"] = { useAgent: "yes", privateKey: KEY })), "ssh.useAgent", "must be true or false"],
    ["ssh.agent alias", withChange((c) => (c["ssh"] = { agent: true, privateKey: KEY })), "ssh.agent", `did you mean "useAgent"?`],
    ["no key for some hosts", withChange((c) => {
        c["ssh"] = { user: "ubuntu" };
        host(c, 0)["privateKey"] = KEY;
    }), "ssh.privateKey", "(hosts[1], hosts[2] have no privateKey of their own): run `pulumi config set --secret --path ssh.privateKey"],
    ["per-host key malformed", withChange((c) => (host(c, 2)["privateKey"] = "hunter2")), "hosts[2].privateKey", "run `pulumi config set --secret --path 'hosts[2].privateKey' < ~/.ssh/id_ed25519`"],
    ["per-host key is a public key", withChange((c) => (host(c, 1)["privateKey"] = HOST_KEY)), "hosts[1].privateKey", "is a public key"],
    ["ssh.bastion a string", withChange((c) => ((c["ssh"] as Mutable)["bastion"] = "jump.example.com")), "ssh.bastion", `(write ssh.bastion: {address: "jump.example.com"})`],
    ["ssh.bastion without address", withChange((c) => ((c["ssh"] as Mutable)["bastion"] = { user: "jump" })), "ssh.bastion.address", "is required: the IP address or DNS name of the jump host"],
    ["ssh.bastion bad port", withChange((c) => ((c["ssh"] as Mutable)["bastion"] = { address: "192.0.2.1", port: 70000 })), "ssh.bastion.port", "not a valid port"],
    ["ssh.bastion bad user", withChange((c) => ((c["ssh"] as Mutable)["bastion"] = { address: "192.0.2.1", user: "jump@192.0.2.1" })), "ssh.bastion.user", "put only the user name here"],
    ["ssh.bastion key typo", withChange((c) => ((c["ssh"] as Mutable)["bastion"] = { host: "192.0.2.1" })), "ssh.bastion.host", `did you mean "address"?`],
    ["ssh.bastion false", withChange((c) => ((c["ssh"] as Mutable)["bastion"] = false)), "ssh.bastion", "false is only meaningful on a host"],
    ["ssh.bastion key malformed", withChange((c) => ((c["ssh"] as Mutable)["bastion"] = { address: "192.0.2.1", privateKey: "~/.ssh/jump" })), "ssh.bastion.privateKey", "looks like a file path"],
    ["host bastion true", withChange((c) => (host(c, 1)["bastion"] = true)), "hosts[1].bastion", "or false to connect to it directly"],
    ["host bastion none", withChange((c) => (host(c, 1)["bastion"] = "none")), "hosts[1].bastion", "write bastion: false"],
    ["host bastion bad address", withChange((c) => (host(c, 1)["bastion"] = { address: "0.0.0.0" })), "hosts[1].bastion.address", "give the jump host's real IP address"],
    ["host bastion alias", withChange((c) => (host(c, 1)["jumpHost"] = { address: "192.0.2.1" })), "hosts[1].jumpHost", `did you mean "bastion"?`],
    ["hostKey garbage", withChange((c) => (host(c, 0)["hostKey"] = "AAAAC3NzaC1lZDI1NTE5")), "hosts[0].hostKey", "is not an SSH public host key line"],
    ["hostKey several lines", withChange((c) => (host(c, 0)["hostKey"] = `192.0.2.10 ${HOST_KEY}\n192.0.2.10 ${ECDSA_KEY}`)), "hosts[0].hostKey", "holds 2 lines: give one key"],
    ["hostKey rsa", withChange((c) => (host(c, 0)["hostKey"] = `192.0.2.10 ${pubKey("ssh-rsa")}`)), "hosts[0].hostKey", "an RSA host key cannot be pinned"],
    ["hostKey damaged", withChange((c) => (host(c, 0)["hostKey"] = `ssh-ed25519 ${pubKey("ssh-rsa").split(" ")[1]}`)), "hosts[0].hostKey", "is damaged"],
    ["hostKey not a string", withChange((c) => (host(c, 0)["hostKey"] = ["ssh-ed25519"])), "hosts[0].hostKey", "must be a string, got a list"],
    ["bastion hostKey rsa", withChange((c) => ((c["ssh"] as Mutable)["bastion"] = { address: "192.0.2.1", hostKey: pubKey("ssh-rsa") })), "ssh.bastion.hostKey", "pin the jump host's ed25519"],
    ["version without patch", withChange((c) => (c["kubernetesVersion"] = "1.36")), "kubernetesVersion", `"1.36.4" (the latest 1.36 patch)`],
    ["version as a YAML number", withChange((c) => (c["kubernetesVersion"] = 1.35)), "kubernetesVersion", `"1.35.8"`],
    ["unsupported minor", withChange((c) => (c["kubernetesVersion"] = "1.30.2")), "kubernetesVersion", "1.35, 1.36, 1.37"],
    ["not a version", withChange((c) => (c["kubernetesVersion"] = "latest")), "kubernetesVersion", "write MAJOR.MINOR.PATCH"],
    ["pre-release version", withChange((c) => (c["kubernetesVersion"] = "1.37.0-rc.1")), "kubernetesVersion", "pre-release"],
    ["network key typo", withChange((c) => (c["network"] = { podSubnett: "10.244.0.0/16" })), "network.podSubnett", `did you mean "podSubnet"?`],
    ["network not an object", withChange((c) => (c["network"] = "flannel")), "network", "must be an object"],
    ["pod subnet not a CIDR", withChange((c) => (c["network"] = { podSubnet: "10.244.0.0/33" })), "network.podSubnet", "not a valid CIDR"],
    ["pod subnet without prefix", withChange((c) => (c["network"] = { podSubnet: "10.244.0.0" })), "network.podSubnet", `add a prefix length (e.g. "10.244.0.0/16")`],
    ["pod subnet host bits", withChange((c) => (c["network"] = { podSubnet: "10.244.1.0/16" })), "network.podSubnet", `use the network address "10.244.0.0/16"`],
    ["service subnet host bits (IPv6)", withChange((c) => (c["network"] = { podSubnet: "fd00:10:244::/56", serviceSubnet: "fd00:10:96::1/112" })), "network.serviceSubnet", `"fd00:10:96::/112"`],
    ["pod/service overlap", withChange((c) => (c["network"] = { podSubnet: "10.96.0.0/16" })), "network.serviceSubnet", "overlaps the pod subnet"],
    ["pod/service different families", withChange((c) => (c["network"] = { podSubnet: "fd00:10:244::/56" })), "network.serviceSubnet", "use the same IP family"],
    ["service subnet too large", withChange((c) => (c["network"] = { serviceSubnet: "10.0.0.0/8" })), "network.serviceSubnet", "needs a prefix of /12 or longer"],
    ["IPv6 service subnet too large", withChange((c) => (c["network"] = { podSubnet: "fd00:10:244::/56", serviceSubnet: "fd00:10:96::/64" })), "network.serviceSubnet", "/108 or longer"],
    ["service subnet too small", withChange((c) => (c["network"] = { serviceSubnet: "10.96.0.0/30" })), "network.serviceSubnet", "too small"],
    ["pod subnet smaller than /24", withChange((c) => (c["network"] = { podSubnet: "10.244.0.0/25" })), "network.podSubnet", "use a prefix of /24 or shorter"],
    ["pod subnet too small for the hosts", withChange((c) => (c["network"] = { podSubnet: "10.244.0.0/23" })), "network.podSubnet", "room for 2 node(s)"],
    ["pod subnet too large", withChange((c) => (c["network"] = { podSubnet: "10.0.0.0/7" })), "network.podSubnet", "/8 or longer"],
    ["internalAddress in pod subnet", withChange((c) => (host(c, 1)["internalAddress"] = "10.244.3.7")), "hosts[1].internalAddress", "inside the pod subnet 10.244.0.0/16"],
    [
        "address in service subnet (no internalAddress)",
        withChange((c) => {
            host(c, 2)["address"] = "10.100.0.12";
            delete host(c, 2)["internalAddress"];
        }),
        "hosts[2].address",
        "inside the service subnet 10.96.0.0/12",
    ],
    ["node address of the wrong family", withChange((c) => (host(c, 1)["internalAddress"] = "fd00::11")), "hosts[1].internalAddress", "is IPv6 but the cluster network is IPv4"],
    ["dnsDomain invalid", withChange((c) => (c["network"] = { dnsDomain: "cluster_local" })), "network.dnsDomain", "not a valid DNS domain"],
    ["dnsDomain uppercase", withChange((c) => (c["network"] = { dnsDomain: "Cluster.Local" })), "network.dnsDomain", `write it in lowercase: "cluster.local"`],
    ["unknown cni", withChange((c) => (c["network"] = { cni: "weave" })), "network.cni", `use one of "flannel", "calico", "cilium" or "none"`],
    ["cni typo", withChange((c) => (c["network"] = { cni: "cillium" })), "network.cni", `did you mean "cilium"?`],
    ["charts unknown chart", withChange((c) => (c["charts"] = { flanel: { repo: "https://m.example/f" } })), "charts.flanel", `did you mean "flannel"?`],
    ["charts both repo and path", withChange((c) => (c["charts"] = { flannel: { repo: "https://m.example/f", path: "/tmp" } })), "charts.flannel", "not both"],
    ["charts repo not a URL", withChange((c) => (c["charts"] = { flannel: { repo: "m.example/f" } })), "charts.flannel.repo", "not a chart repository URL"],
    ["charts path missing", withChange((c) => (c["charts"] = { flannel: { path: "./no-such-chart-v0.28.5.tgz" } })), "charts.flannel.path", "does not exist"],
    ["charts empty source", withChange((c) => (c["charts"] = { flannel: {} })), "charts.flannel", "needs repo, path or values"],
    ["charts values change what the program derives", withChange((c) => (c["charts"] = { flannel: { values: { podCidr: "10.1.0.0/16" } } })), "charts.flannel.values", `sets "podCidr", which the program derives from the cluster's settings`],
    ["charts values not an object", withChange((c) => (c["charts"] = { flannel: { values: "image: x" } })), "charts.flannel.values", "must be an object of chart values"],
    ["apiServer not an object", withChange((c) => (c["apiServer"] = "k8s.example.com")), "apiServer", "must be an object"],
    ["apiServer.address with scheme", withChange((c) => (c["apiServer"] = { address: "https://k8s.example.com:6443" })), "apiServer.address", `drop the scheme and any path: write "k8s.example.com:6443"`],
    ["apiServer.address with port", withChange((c) => (c["apiServer"] = { address: "k8s.example.com:6443" })), "apiServer.address", "put the port in `apiServer.port`"],
    ["apiServer.address invalid", withChange((c) => (c["apiServer"] = { address: "k8s..example.com" })), "apiServer.address", "not a valid API server address"],
    ["apiServer.port invalid", withChange((c) => (c["apiServer"] = { port: 65536 })), "apiServer.port", "(e.g. 6443)"],
    ["extraSans entry invalid", withChange((c) => (c["apiServer"] = { extraSans: ["k8s.example.com", "bad name"] })), "apiServer.extraSans[1]", "not a valid subject alternative name"],
    ["extraSans not a list", withChange((c) => (c["apiServer"] = { extraSans: "k8s.example.com" })), "apiServer.extraSans", "must be a list"],
    ["apiServer key typo", withChange((c) => (c["apiServer"] = { extraSANs: [] })), "apiServer.extraSANs", `did you mean "extraSans"?`],
    ["kubeadm not an object", withChange((c) => (c["kubeadm"] = [])), "kubeadm", "must be an object"],
    ["kubeadm key typo", withChange((c) => (c["kubeadm"] = { imageRepo: "registry.k8s.io" })), "kubeadm.imageRepo", `did you mean "imageRepository"?`],
    ["imageRepository with scheme", withChange((c) => (c["kubeadm"] = { imageRepository: "https://registry.example.com/k8s" })), "kubeadm.imageRepository", `drop the scheme: write "registry.example.com/k8s"`],
    ["imageRepository bad path", withChange((c) => (c["kubeadm"] = { imageRepository: "registry.example.com/K8S" })), "kubeadm.imageRepository", "path component"],
    [
        "extra arg with leading dashes",
        withChange((c) => (c["kubeadm"] = { apiServerExtraArgs: { "--audit-log-path": "/var/log/audit.log" } })),
        'kubeadm.apiServerExtraArgs["--audit-log-path"]',
        "write `audit-log-path`, not `--audit-log-path`",
    ],
    [
        "extra arg name=value",
        withChange((c) => (c["kubeadm"] = { schedulerExtraArgs: [{ name: "v=4", value: "" }] })),
        "kubeadm.schedulerExtraArgs[0].name",
        `give the name and the value separately (name "v", value "4")`,
    ],
    ["extra arg list entry without name", withChange((c) => (c["kubeadm"] = { schedulerExtraArgs: [{ value: "4" }] })), "kubeadm.schedulerExtraArgs[0].name", "is required"],
    ["extra arg value is an object", withChange((c) => (c["kubeadm"] = { kubeletExtraArgs: { "node-labels": { a: "b" } } })), 'kubeadm.kubeletExtraArgs["node-labels"]', "must be a string, number or boolean"],
    ["extra arg value missing", withChange((c) => (c["kubeadm"] = { kubeletExtraArgs: { v: null } })), "kubeadm.kubeletExtraArgs.v", "has no value"],
    ["extra args a string", withChange((c) => (c["kubeadm"] = { controllerManagerExtraArgs: "--v=2" })), "kubeadm.controllerManagerExtraArgs", "must be a map {flag: value} or a list [{name, value}]"],
    ["kube-proxy ipvs", withChange((c) => (c["kubeadm"] = { kubeProxyMode: "ipvs" })), "kubeadm.kubeProxyMode", `deprecated since Kubernetes 1.35: use "nftables"`],
    ["kube-proxy unknown", withChange((c) => (c["kubeadm"] = { kubeProxyMode: "userspace" })), "kubeadm.kubeProxyMode", `use "iptables" or "nftables"`],
    ["kubelet is a list", withChange((c) => (c["kubeadm"] = { kubelet: ["maxPods=200"] })), "kubeadm.kubelet", "must be an object of KubeletConfiguration fields"],
    ["kubelet cgroupDriver", withChange((c) => (c["kubeadm"] = { kubelet: { cgroupDriver: "cgroupfs" } })), "kubeadm.kubelet.cgroupDriver", "cannot be set here"],
    ["kubelet kind", withChange((c) => (c["kubeadm"] = { kubelet: { kind: "KubeletConfiguration" } })), "kubeadm.kubelet.kind", "header itself"],
    ["kubelet apiVersion", withChange((c) => (c["kubeadm"] = { kubelet: { apiVersion: "kubelet.config.k8s.io/v1beta1" } })), "kubeadm.kubelet.apiVersion", "header itself"],
    ["kubelet dashed field", withChange((c) => (c["kubeadm"] = { kubelet: { "max-pods": 200 } })), 'kubeadm.kubelet["max-pods"]', `did you mean "maxPods"?`],
    ["kubelet field of the wrong type", withChange((c) => (c["kubeadm"] = { kubelet: { maxPods: "200" } })), "kubeadm.kubelet.maxPods", `must be a whole number (unquoted), got the string "200"`],
    ["kubelet unknown field", withChange((c) => (c["kubeadm"] = { kubelet: { maxPod: 200 } })), "kubeadm.kubelet.maxPod", `did you mean "maxPods"?`],
    ["kubelet duration", withChange((c) => (c["kubeadm"] = { kubelet: { syncFrequency: "ten seconds" } })), "kubeadm.kubelet.syncFrequency", `must be a duration such as "10s"`],
    ["kubelet map of strings", withChange((c) => (c["kubeadm"] = { kubelet: { evictionHard: { "memory.available": 100 } } })), "kubeadm.kubelet.evictionHard", "must be a map of strings"],
    ["controller-manager flag with a bad number", withChange((c) => (c["kubeadm"] = { controllerManagerExtraArgs: { "node-cidr-mask-size-ipv4": "abc" } })), 'kubeadm.controllerManagerExtraArgs["node-cidr-mask-size-ipv4"]', `must be a prefix length (e.g. 24), got "abc"`],
    ["api server flag with a bad boolean", withChange((c) => (c["kubeadm"] = { apiServerExtraArgs: { profiling: "no" } })), "kubeadm.apiServerExtraArgs.profiling", `must be true or false, got "no"`],
    ["user with a trailing $", withChange((c) => (host(c, 1)["user"] = "deploy$")), "hosts[1].user", "is not a valid user name"],
    ["a NUL byte in a value", withChange((c) => (c["network"] = { dnsDomain: "cluster\u0000.local" })), "network.dnsDomain", "contains a NUL byte"],
    ["a __proto__ key", withChange((c) => (c["network"] = JSON.parse('{"__proto__": 1}'))), 'network.__proto__', `remove it; the known settings here are`],
    ["a constructor key", withChange((c) => (c["apiServer"] = { constructor: 1 })), "apiServer.constructor", `remove it; the known settings here are`],
    ["a toString key", withChange((c) => (c["kubeadm"] = { toString: 1 })), "kubeadm.toString", `remove it; the known settings here are`],
    ["API port of the kubelet", withChange((c) => (c["apiServer"] = { port: 10250 })), "apiServer.port", "10250 is the kubelet's port on every control plane"],
    ["API port of etcd", withChange((c) => (c["apiServer"] = { port: 2379 })), "apiServer.port", "2379 is etcd (client)'s port"],
    ["API address on loopback", withChange((c) => (c["apiServer"] = { address: "127.0.0.1" })), "apiServer.address", "is a loopback address: every node would try to reach the API on itself"],
    ["API address localhost", withChange((c) => (c["apiServer"] = { address: "localhost" })), "apiServer.address", "is a loopback address"],
    ["label key invalid", withChange((c) => (host(c, 1)["labels"] = { "bad_": "x" })), "hosts[1].labels.bad_", "is not a valid key"],
    ["label value invalid", withChange((c) => (host(c, 1)["labels"] = { tier: "-web" })), "hosts[1].labels.tier", "is not a valid label value"],
    ["role label set by hand", withChange((c) => (host(c, 1)["labels"] = { "node-role.kubernetes.io/worker": "" })), 'hosts[1].labels["node-role.kubernetes.io/worker"]', "is set by the program from the host's roles"],
    ["labels not a map", withChange((c) => (host(c, 1)["labels"] = ["tier=web"])), "hosts[1].labels", "must be a map of label keys to values"],
    ["taint effect typo", withChange((c) => (host(c, 1)["taints"] = [{ key: "dedicated", effect: "NoSchedul" }])), "hosts[1].taints[0].effect", `did you mean "NoSchedule"?`],
    ["taint without key", withChange((c) => (host(c, 1)["taints"] = [{ effect: "NoSchedule" }])), "hosts[1].taints[0].key", "must be a string"],
    ["taint repeated", withChange((c) => (host(c, 1)["taints"] = [{ key: "a", effect: "NoSchedule" }, { key: "a", value: "b", effect: "NoSchedule" }])), "hosts[1].taints[1]", "repeats the taint a:NoSchedule"],
    ["registry with a scheme", withChange((c) => (c["containerd"] = { registries: [{ registry: "https://10.0.0.5:5443" }] })), "containerd.registries[0].registry", "without a scheme"],
    ["registry mirror not a URL", withChange((c) => (c["containerd"] = { registries: [{ registry: "docker.io", mirrors: ["mirror.example.com"] }] })), "containerd.registries[0].mirrors[0]", "is not a mirror URL"],
    ["registry CA not a certificate", withChange((c) => (c["containerd"] = { registries: [{ registry: "10.0.0.5:5443", ca: "not a cert" }] })), "containerd.registries[0].ca", "must be a PEM certificate"],
    ["registry twice", withChange((c) => (c["containerd"] = { registries: [{ registry: "docker.io", mirrors: ["https://a.example"] }, { registry: "docker.io" }] })), "containerd.registries[1]", "is already configured in containerd.registries[0]"],
    ["restrictOomScoreAdj not a boolean", withChange((c) => (c["containerd"] = { restrictOomScoreAdj: "yes" })), "containerd.restrictOomScoreAdj", "must be true or false"],
    ["kube-proxy field unknown", withChange((c) => (c["kubeadm"] = { kubeProxy: { conntrak: {} } })), "kubeadm.kubeProxy.conntrak", `did you mean "conntrack"?`],
    ["kube-proxy mode set in kubeProxy", withChange((c) => (c["kubeadm"] = { kubeProxy: { mode: "ipvs" } })), "kubeadm.kubeProxy.mode", "set `kubeadm.kubeProxyMode` instead"],
    ["kubeadm ignore all", withChange((c) => (c["kubeadm"] = { ignorePreflightErrors: ["all"] })), "kubeadm.ignorePreflightErrors[0]", `"all" would hide every problem kubeadm finds`],
    ["kubeadm ignore not a list", withChange((c) => (c["kubeadm"] = { ignorePreflightErrors: "SystemVerification" })), "kubeadm.ignorePreflightErrors", "must be a list"],
    ["PEM armour around junk", withChange((c) => (c["ssh"] = { privateKey: pem("PRIVATE KEY", "bm90IGEga2V5") })), "ssh.privateKey", "has PEM armour but no private key the program can read"],
    ["preflight not an object", withChange((c) => (c["preflight"] = "cgroup")), "preflight", "must be an object like {ignore: [cgroup]}"],
    ["preflight.ignore not a list", withChange((c) => (c["preflight"] = { ignore: "cgroup" })), "preflight.ignore", "must be a list of check names"],
    ["preflight.ignore unknown check", withChange((c) => (c["preflight"] = { ignore: ["cgroups"] })), "preflight.ignore[0]", `is not a preflight check: use "cgroup" or one of`],
    ["preflight unknown key", withChange((c) => (c["preflight"] = { ignored: ["port"] })), "preflight.ignored", `did you mean "ignore"?`],
    ["packages not an object", withChange((c) => (c["packages"] = "local")), "packages", "must be an object like {localRepository"],
    ["localRepository empty", withChange((c) => (c["packages"] = { localRepository: {} })), "packages.localRepository", "needs apt and/or rpm"],
    ["localRepository apt with deb prefix", withChange((c) => (c["packages"] = { localRepository: { apt: "deb http://10.0.0.5/debs ./" } })), "packages.localRepository.apt", `write "URL SUITE [COMPONENT...]" without "deb"`],
    ["localRepository apt without suite", withChange((c) => (c["packages"] = { localRepository: { apt: "http://10.0.0.5/debs" } })), "packages.localRepository.apt", "is not an apt source"],
    ["localRepository rpm not a URL", withChange((c) => (c["packages"] = { localRepository: { rpm: "10.0.0.5/rpms" } })), "packages.localRepository.rpm", "is not a repository URL"],
    ["localRepository keyUrl not a URL", withChange((c) => (c["packages"] = { localRepository: { apt: "http://10.0.0.5/debs ./", keyUrl: "key.gpg" } })), "packages.localRepository.keyUrl", "is not a URL"],
    ["localRepository typo", withChange((c) => (c["packages"] = { localRepository: { apt: "http://10.0.0.5/debs ./", keyurl: "http://x/k" } })), "packages.localRepository.keyurl", `did you mean "keyUrl"?`],
    ["kubernetesRepository not a URL", withChange((c) => (c["packages"] = { kubernetesRepository: "mirror.example/k8s" })), "packages.kubernetesRepository", "is not a repository base URL: give the http(s) URL of a mirror of pkgs.k8s.io's base"],
    ["containerdRepository with localRepository", withChange((c) => (c["packages"] = { containerdRepository: "https://mirror.example/docker", localRepository: { apt: "http://10.0.0.5/debs ./" } })), "packages.containerdRepository", "has no effect with packages.localRepository"],
    ["proxy not an object", withChange((c) => (c["proxy"] = "http://proxy:3128")), "proxy", "must be an object with http, https and/or noProxy"],
    ["proxy without a URL", withChange((c) => (c["proxy"] = { noProxy: ["10.0.0.5"] })), "proxy", "needs http and/or https"],
    ["proxy URL with credentials", withChange((c) => (c["proxy"] = { https: "http://bob:hunter2@proxy.example:3128" })), "proxy.https", "has a user name or password in it (not shown), which the program refuses"],
    ["proxy URL with a path", withChange((c) => (c["proxy"] = { http: "http://proxy.example:3128/pac" })), "proxy.http", "has a path, query or fragment"],
    ["proxy URL socks", withChange((c) => (c["proxy"] = { http: "socks5://proxy.example:1080" })), "proxy.http", "is not an http:// or https:// URL"],
    ["proxy URL not a URL", withChange((c) => (c["proxy"] = { http: "proxy.example:3128" })), "proxy.http", "is not an http:// or https:// URL"],
    ["proxy noProxy bad entry", withChange((c) => (c["proxy"] = { http: "http://proxy.example:3128", noProxy: ["10.0.0.0/33"] })), "proxy.noProxy[0]", "is not a valid CIDR"],
    ["proxy noProxy not a list", withChange((c) => (c["proxy"] = { http: "http://proxy.example:3128", noProxy: "10.0.0.5" })), "proxy.noProxy", "must be a list"],
    ["proxy typo", withChange((c) => (c["proxy"] = { http: "http://proxy.example:3128", no_proxy: [] })), "proxy.no_proxy", `did you mean "noProxy"?`],
    ["users not a list", withChange((c) => (c["users"] = { jane: "view" })), "users", "must be a list of users"],
    ["user without role", withChange((c) => (c["users"] = [{ name: "jane" }])), "users[0].role", "is required: the ClusterRole to bind the user to"],
    ["user name system:", withChange((c) => (c["users"] = [{ name: "system:kube-proxy", role: "view" }])), "users[0].name", `starts with "system:"`],
    ["user name with a slash", withChange((c) => (c["users"] = [{ name: "ou/jane", role: "view" }])), "users[0].name", "is not a user name the program accepts"],
    ["user in system:masters", withChange((c) => (c["users"] = [{ name: "jane", role: "view", groups: ["system:masters"] }])), "users[0].groups[0]", `"system:masters" is refused: that group bypasses RBAC entirely`],
    ["user in another system: group", withChange((c) => (c["users"] = [{ name: "jane", role: "view", groups: ["system:nodes"] }])), "users[0].groups[0]", `"system:" groups are Kubernetes' own`],
    ["user in kubeadm:cluster-admins", withChange((c) => (c["users"] = [{ name: "jane", role: "view", groups: ["kubeadm:cluster-admins"] }])), "users[0].groups[0]", "kubeadm binds it to cluster-admin"],
    ["user with two groups", withChange((c) => (c["users"] = [{ name: "jane", role: "view", groups: ["a", "b"] }])), "users[0].groups", "the certificate can carry only one"],
    ["user role with a slash", withChange((c) => (c["users"] = [{ name: "jane", role: "rbac/view" }])), "users[0].role", "is not a ClusterRole name"],
    ["user namespace invalid", withChange((c) => (c["users"] = [{ name: "jane", role: "edit", namespace: "Apps" }])), "users[0].namespace", "is not a namespace name"],
    ["user twice", withChange((c) => (c["users"] = [{ name: "jane", role: "view" }, { name: "Jane", role: "edit" }])), "users[1].name", "is already users[0]"],
    ["user typo", withChange((c) => (c["users"] = [{ name: "jane", role: "view", group: ["a"] }])), "users[0].group", `did you mean "groups"?`],
];

describe("parseClusterConfig rejects bad configs", () => {
    test("the table has at least 30 cases", () => {
        expect(badConfigs.length).toBeGreaterThanOrEqual(30);
    });

    test.each(badConfigs)("%s", (_name, raw, path, message) => {
        const problems = problemsOf(raw);
        expect(problems).toEqual(
            expect.arrayContaining([expect.objectContaining({ path, message: expect.stringContaining(message) })]),
        );
        // Every problem names a path and says something.
        for (const p of problems) {
            expect(p.path).not.toBe("");
            expect(p.message.length).toBeGreaterThan(10);
        }
    });

    test("the catalogue: the exact message a user sees for every bad config", () => {
        // Reviewable in tests/__snapshots__/config.test.ts.snap: each entry is
        // the whole ConfigError text, as `pulumi up` prints it.
        const catalogue = Object.fromEntries(badConfigs.map(([name, raw]) => [name, captureError(raw).message]));
        expect(catalogue).toMatchSnapshot();
        for (const text of Object.values(catalogue)) {
            for (const line of text.split("\n").slice(1)) expect(line).toMatch(/^ {2}- [A-Za-z][\w.\[\]"/-]*: .{10,}/);
        }
    });

    test("a single-cause mistake gives exactly one problem", () => {
        expect(problemsOf(withChange((c) => (host(c, 0)["name"] = "cp 1")))).toHaveLength(1);
        expect(problemsOf(withChange((c) => (c["network"] = { podSubnett: "10.244.0.0/16" })))).toHaveLength(1);
        expect(problemsOf(withChange((c) => (c["kubernetesVersion"] = "1.36")))).toHaveLength(1);
    });

    test("error messages never contain the private key", () => {
        const secret = `${pemBegin("OPENSSH PRIVATE KEY")}\nc2VjcmV0LXNlY3JldC1zZWNyZXQ=\n`;
        const e = captureError(withChange((c) => (c["ssh"] = { privateKey: secret })));
        expect(e.message).not.toContain("c2VjcmV0");
        expect(e.problems[0]?.path).toBe("ssh.privateKey");
    });
});

function captureError(raw: RawConfig, opts?: ParseOptions): ConfigError {
    try {
        parseClusterConfig(raw, "demo", opts);
    } catch (e) {
        if (e instanceof ConfigError) return e;
        throw e;
    }
    throw new Error("expected a ConfigError");
}

describe("every problem is reported at once", () => {
    const bad: RawConfig = {
        hosts: [
            { name: "CP 1", address: "192.0.2.10", roles: ["master"] },
            { name: "worker-1", address: "192.0.2.10", internalAddress: "10.244.0.11", roles: ["worker"], port: 0 },
            "worker-2",
        ],
        ssh: { user: "ubuntu" },
        kubernetesVersion: "1.36",
        network: { podSubnett: "10.244.0.0/16", serviceSubnet: "10.0.0.0/8", cni: "weave" },
        apiServer: { address: "https://k8s.example.com", extraSans: ["*.example.com", "not valid"] },
        kubeadm: { apiServerExtraArgs: { "--audit-log-path": "/var/log/audit.log" }, kubeProxyMode: "ipvs" },
    };

    const expectedPaths = [
        "hosts",
        "hosts[0].name",
        "hosts[0].roles[0]",
        "hosts[1].port",
        "hosts[1].address",
        "hosts[1].internalAddress",
        "hosts[2]",
        "ssh.privateKey",
        "kubernetesVersion",
        "network.podSubnett",
        "network.serviceSubnet",
        "network.serviceSubnet",
        "network.cni",
        "apiServer.address",
        "apiServer.extraSans[1]",
        'kubeadm.apiServerExtraArgs["--audit-log-path"]',
        "kubeadm.kubeProxyMode",
    ];

    test("one ConfigError lists them all, in a stable order", () => {
        const e = captureError(bad);
        expect(e.problems.map((p) => p.path)).toEqual(expectedPaths);
        expect(e.problems).toHaveLength(17);
        const service = e.problems.filter((p) => p.path === "network.serviceSubnet").map((p) => p.message);
        expect(service).toEqual([expect.stringContaining("is too large"), expect.stringContaining("overlaps the pod subnet")]);
        expect(e.problems.find((p) => p.path === "hosts[1].internalAddress")?.message).toContain("inside the pod subnet");
        // The same input gives the same list.
        expect(captureError(bad).problems).toEqual(e.problems);
    });

    test("the message is a readable list", () => {
        const e = captureError(bad);
        const lines = e.message.split("\n");
        expect(lines[0]).toBe("Invalid stack configuration (17 problems):");
        expect(lines).toHaveLength(18);
        expect(lines[1]).toMatch(/^ {2}- hosts: no host has the control-plane role/);
        expect(lines).toContain(
            `  - hosts[0].name: "CP 1" is not a valid node name: use lowercase letters, digits and '-', starting and ending with a letter or digit (e.g. "cp-1")`,
        );
        expect(e.name).toBe("ConfigError");
        expect(e).toBeInstanceOf(Error);
    });

    test("a single problem is counted in the singular", () => {
        const e = captureError(withChange((c) => (c["network"] = { cni: "weave" })));
        expect(e.message.split("\n")[0]).toBe("Invalid stack configuration (1 problem):");
    });
});

describe("parseClusterConfig accepts good configs", () => {
    test("containerd registries, restrictOomScoreAdj, kube-proxy fields and kubeadm preflight ignores", () => {
        const ca = require("crypto").generateKeyPairSync("ec", { namedCurve: "P-256" });
        const { execFileSync } = require("child_process");
        const dir = require("fs").mkdtempSync(require("path").join(require("os").tmpdir(), "kp-ca-"));
        require("fs").writeFileSync(`${dir}/k.pem`, ca.privateKey.export({ type: "pkcs8", format: "pem" }));
        const pemCert = execFileSync("openssl", ["req", "-x509", "-new", "-key", `${dir}/k.pem`, "-subj", "/CN=test-ca", "-days", "1"], { encoding: "utf8" });
        const spec = parseClusterConfig(withChange((c) => {
            c["containerd"] = { restrictOomScoreAdj: true, registries: [{ registry: "10.0.0.5:5443", ca: pemCert }, { registry: "docker.io", mirrors: ["https://mirror.example.com/v2/dockerhub"] }] };
            c["kubeadm"] = { kubeProxy: { conntrack: { maxPerCore: 0 } }, ignorePreflightErrors: ["SystemVerification", "SystemVerification"] };
        }), "demo");
        expect(spec.containerd).toEqual({
            restrictOomScoreAdj: true,
            registries: [
                { registry: "10.0.0.5:5443", mirrors: [], ca: pemCert, skipVerify: false, plainHttp: false },
                { registry: "docker.io", mirrors: ["https://mirror.example.com/v2/dockerhub"], skipVerify: false, plainHttp: false },
            ],
        });
        expect(spec.kubeadm.kubeProxyConfiguration).toEqual({ conntrack: { maxPerCore: 0 } });
        expect(spec.kubeadm.ignorePreflightErrors).toEqual(["SystemVerification"]);
    });

    test("per-host labels and taints", () => {
        const spec = parseClusterConfig(withChange((c) => {
            host(c, 1)["labels"] = { tier: "web", "example.com/zone": "a", gpu: true };
            host(c, 1)["taints"] = [{ key: "dedicated", value: "gpu", effect: "NoSchedule" }, { key: "spot", effect: "PreferNoSchedule" }];
        }), "demo");
        expect(spec.hosts[1].labels).toEqual({ "example.com/zone": "a", gpu: "true", tier: "web" });
        expect(spec.hosts[1].taints).toEqual([{ key: "dedicated", value: "gpu", effect: "NoSchedule" }, { key: "spot", effect: "PreferNoSchedule" }]);
    });

    test("network.cni none: no pod network is installed by the program", () => {
        expect(parseClusterConfig(withChange((c) => (c["network"] = { cni: "none" })), "demo").network.cni).toBe("none");
    });

    test("charts: a mirror repository or a local chart archive per chart name", () => {
        const archive = require("path").join(require("os").tmpdir(), `flannel-${process.pid}.tgz`);
        require("fs").writeFileSync(archive, "");
        const spec = parseClusterConfig(withChange((c) => {
            c["charts"] = { flannel: { path: archive }, cilium: { repo: " https://mirror.example/cilium " } };
        }), "demo");
        expect(spec.charts).toEqual({ flannel: { path: archive }, cilium: { repo: "https://mirror.example/cilium" } });
    });

    test("preflight.ignore and a local package repository", () => {
        const spec = parseClusterConfig(withChange((c) => {
            c["preflight"] = { ignore: ["cgroup", "port", "cgroup"] };
            c["packages"] = { localRepository: { apt: "  http://10.0.0.5/debs   ./ ", rpm: "http://10.0.0.5/rpms/" } };
        }), "demo");
        expect(spec.preflight).toEqual({ ignore: ["cgroup", "port"] });
        expect(spec.packages).toEqual({ localRepository: { apt: "http://10.0.0.5/debs ./", rpm: "http://10.0.0.5/rpms/" } });
    });

    test("proxy, package mirrors and users", () => {
        const spec = parseClusterConfig(withChange((c) => {
            c["proxy"] = { http: "http://proxy.example:3128/", https: " http://10.0.0.3:3128 ", noProxy: [".example.internal", "10.0.0.0/8", "reg.lan", "10.0.0.0/8"] };
            c["packages"] = { kubernetesRepository: "https://mirror.example/pkgs.k8s.io/core:/stable:/", containerdRepository: "https://mirror.example/docker/linux" };
            c["users"] = [{ name: "jane@example.com", role: "view" }, { name: "ci-bot", role: "edit", namespace: "apps", groups: ["team-a", "team-a"] }];
        }), "demo");
        expect(spec.proxy).toEqual({ http: "http://proxy.example:3128", https: "http://10.0.0.3:3128", noProxy: [".example.internal", "10.0.0.0/8", "reg.lan"] });
        expect(spec.packages).toEqual({ kubernetesRepository: "https://mirror.example/pkgs.k8s.io/core:/stable:", containerdRepository: "https://mirror.example/docker/linux" });
        expect(spec.users).toEqual([
            { name: "jane@example.com", groups: [], role: "view" },
            { name: "ci-bot", groups: ["team-a"], role: "edit", namespace: "apps" },
        ]);
    });

    test("a user role that is not a default ClusterRole is a warning, not a problem", () => {
        const spec = parseClusterConfig(withChange((c) => (c["users"] = [{ name: "jane", role: "my-org:reader" }])), "demo");
        expect(configWarnings(spec)).toEqual([expect.stringContaining(`users[0].role "my-org:reader" is not one of Kubernetes' default user roles`)]);
    });

    test("a proxy URL with credentials is never quoted, and a stored-as-secret proxy is refused", () => {
        const e = captureError(withChange((c) => (c["proxy"] = { https: "http://bob:hunter2@proxy.example:3128" })));
        expect(e.message).not.toContain("hunter2");
        expect(e.message).not.toContain("bob");
        const raw = { ...minimal(), proxy: JSON.stringify({ https: "http://bob:hunter2@proxy.example:3128" }) };
        const s = captureError(raw, { encoded: true, secretKeys: ["ssh", "proxy"] });
        expect(s.message).toContain("  - proxy: is stored as a secret");
        expect(s.message).not.toContain("hunter2");
    });

    test("a minimal config gets every default", () => {
        const spec = parseClusterConfig(minimal(), "homelab");
        const expected: ClusterSpec = {
            clusterName: "homelab",
            hosts: [
                {
                    name: "cp-1",
                    address: "192.0.2.10",
                    roles: ["control-plane", "worker"],
                    user: DEFAULT_SSH_USER,
                    port: DEFAULT_SSH_PORT,
                    labels: {},
                    taints: [],
                },
            ],
            kubernetesVersion: DEFAULT_KUBERNETES_VERSION,
            network: {
                podSubnet: DEFAULT_POD_SUBNET,
                serviceSubnet: DEFAULT_SERVICE_SUBNET,
                dnsDomain: DEFAULT_DNS_DOMAIN,
                cni: DEFAULT_CNI,
            },
            apiServer: { address: "192.0.2.10", port: DEFAULT_API_SERVER_PORT, extraSans: [], explicitAddress: false },
            kubeadm: {
                imageRepository: DEFAULT_IMAGE_REPOSITORY,
                apiServerExtraArgs: [],
                controllerManagerExtraArgs: [],
                schedulerExtraArgs: [],
                kubeletExtraArgs: [],
                proxyMode: DEFAULT_PROXY_MODE,
                kubeletConfiguration: {},
                kubeProxyConfiguration: {},
                ignorePreflightErrors: [],
            },
            preflight: { ignore: [] },
            packages: {},
            containerd: { registries: [], restrictOomScoreAdj: false },
            charts: {},
            addons: {
                ingress: {
                    enabled: true, controller: "traefik", exposure: "hostNetwork", nodes: ["cp-1"], httpPort: 80, httpsPort: 443,
                    gatewayApi: true, gatewayApiCrds: GATEWAY_API.url,
                },
                dashboard: { enabled: true, host: "dashboard.homelab.internal", access: "view" },
                metricsServer: { enabled: true },
                smokeTest: { enabled: true },
            },
            users: [],
        };
        expect(spec).toEqual(expected);
        expect("internalAddress" in (spec.hosts[0] ?? {})).toBe(false);
        expect(JSON.stringify(spec)).not.toContain("PRIVATE KEY");
    });

    test("the named defaults have the documented values", () => {
        expect([DEFAULT_SSH_USER, DEFAULT_SSH_PORT, DEFAULT_POD_SUBNET, DEFAULT_SERVICE_SUBNET]).toEqual([
            "root",
            22,
            "10.244.0.0/16",
            "10.96.0.0/12",
        ]);
        expect([DEFAULT_DNS_DOMAIN, DEFAULT_CNI, DEFAULT_API_SERVER_PORT, DEFAULT_PROXY_MODE]).toEqual([
            "cluster.local",
            "flannel",
            6443,
            "iptables",
        ]);
    });

    test("one control plane and two workers", () => {
        const raw = threeHosts();
        (raw.hosts as Mutable[])[2] = { name: "worker-2", address: "worker-2.example.com", roles: ["worker"], user: "admin", port: "2222" };
        raw.kubernetesVersion = "v1.37.0";
        const spec = parseClusterConfig(raw, "prod");
        expect(spec.hosts).toEqual([
            { name: "cp-1", address: "192.0.2.10", internalAddress: "10.0.0.10", roles: ["control-plane"], user: "ubuntu", port: 22, labels: {}, taints: [] },
            { name: "worker-1", address: "192.0.2.11", internalAddress: "10.0.0.11", roles: ["worker"], user: "ubuntu", port: 22, labels: {}, taints: [] },
            { name: "worker-2", address: "worker-2.example.com", roles: ["worker"], user: "admin", port: 2222, labels: {}, taints: [] },
        ]);
        expect(spec.kubernetesVersion).toBe("1.37.0");
        expect(spec.apiServer).toEqual({ address: "192.0.2.10", port: 6443, extraSans: [], explicitAddress: false });
    });

    test("a single host with both roles (given twice, in any order) is sorted and de-duplicated", () => {
        const spec = parseClusterConfig(
            { hosts: [{ name: "solo", address: "solo.lan", roles: ["worker", "control-plane", "worker"] }], ssh: { privateKey: KEY } },
            "solo",
        );
        expect(spec.hosts[0]?.roles).toEqual(["control-plane", "worker"]);
        expect(spec.apiServer.address).toBe("solo.lan");
    });

    test("several control planes without apiServer.address are allowed; the first one is the endpoint", () => {
        const raw = threeHosts();
        for (const h of raw.hosts as Mutable[]) h["roles"] = ["control-plane"];
        const spec = parseClusterConfig(raw, "ha");
        expect(spec.apiServer.address).toBe("192.0.2.10");
        expect(spec.apiServer.explicitAddress).toBe(false);
    });

    test("an explicit API endpoint, port and SANs", () => {
        const raw = threeHosts();
        raw.apiServer = {
            address: "k8s.example.com",
            port: 8443,
            extraSans: ["k8s.example.com", "*.k8s.example.com", "2001:DB8::1", "192.0.2.100", "2001:db8::1", "k8s.example.com"],
        };
        const spec = parseClusterConfig(raw, "ha");
        expect(spec.apiServer).toEqual({
            address: "k8s.example.com",
            port: 8443,
            extraSans: ["k8s.example.com", "*.k8s.example.com", "2001:db8::1", "192.0.2.100"],
            explicitAddress: true,
        });
    });

    test("extra args as a map are sorted by name and stringified", () => {
        const raw = minimal();
        raw.kubeadm = {
            apiServerExtraArgs: { "audit-log-path": "/var/log/audit.log", "audit-log-maxage": 30, "allow-privileged": true },
            kubeletExtraArgs: { v: 2 },
        };
        const spec = parseClusterConfig(raw, "x");
        expect(spec.kubeadm.apiServerExtraArgs).toEqual([
            { name: "allow-privileged", value: "true" },
            { name: "audit-log-maxage", value: "30" },
            { name: "audit-log-path", value: "/var/log/audit.log" },
        ]);
        expect(spec.kubeadm.kubeletExtraArgs).toEqual([{ name: "v", value: "2" }]);
        expect(spec.kubeadm.schedulerExtraArgs).toEqual([]);
    });

    test("extra args as a v1beta4 list keep their order (and repeated flags)", () => {
        const raw = minimal();
        raw.kubeadm = {
            controllerManagerExtraArgs: [
                { name: "v", value: 4 },
                { name: "feature-gates", value: "A=true" },
                { name: "feature-gates", value: "B=false" },
                { name: "bind-address", value: "0.0.0.0" },
            ],
        };
        const spec = parseClusterConfig(raw, "x");
        expect(spec.kubeadm.controllerManagerExtraArgs).toEqual([
            { name: "v", value: "4" },
            { name: "feature-gates", value: "A=true" },
            { name: "feature-gates", value: "B=false" },
            { name: "bind-address", value: "0.0.0.0" },
        ]);
    });

    test("kubeadm settings pass through; kubelet config is copied", () => {
        const kubelet = { failSwapOn: false, maxPods: 200, evictionHard: { "memory.available": "200Mi" } };
        const raw = minimal();
        raw.kubeadm = { imageRepository: "registry.example.com:5000/k8s", kubeProxyMode: "nftables", kubelet };
        const spec = parseClusterConfig(raw, "x");
        expect(spec.kubeadm.imageRepository).toBe("registry.example.com:5000/k8s");
        expect(spec.kubeadm.proxyMode).toBe("nftables");
        expect(spec.kubeadm.kubeletConfiguration).toEqual(kubelet);
        kubelet.evictionHard["memory.available"] = "1Gi";
        expect(spec.kubeadm.kubeletConfiguration).toEqual({ failSwapOn: false, maxPods: 200, evictionHard: { "memory.available": "200Mi" } });
    });

    test("an IPv6 single-stack cluster, addresses normalised", () => {
        const spec = parseClusterConfig(
            {
                hosts: [{ name: "cp-1", address: "2001:DB8:0:0::10", internalAddress: "fd00:0:0:0:0:0:0:10", roles: ["control-plane", "worker"] }],
                ssh: { privateKey: KEY, port: 2222 },
                network: { podSubnet: "fd00:10:244::/56", serviceSubnet: "fd00:10:96::/112", dnsDomain: "k8s.internal", cni: "cilium" },
            },
            "v6",
        );
        expect(spec.hosts[0]).toEqual({
            name: "cp-1",
            address: "2001:db8::10",
            internalAddress: "fd00::10",
            roles: ["control-plane", "worker"],
            user: "root",
            port: 2222,
            labels: {},
            taints: [],
        });
        expect(spec.network).toEqual({ podSubnet: "fd00:10:244::/56", serviceSubnet: "fd00:10:96::/112", dnsDomain: "k8s.internal", cni: "cilium" });
    });

    test("YAML nulls count as unset", () => {
        const raw = minimal();
        raw.network = null;
        raw.apiServer = { address: null };
        raw.kubeadm = { kubelet: null };
        const spec = parseClusterConfig(raw, "x");
        expect(spec.network.cni).toBe("flannel");
        expect(spec.apiServer.explicitAddress).toBe(false);
        expect(spec.kubeadm.kubeletConfiguration).toEqual({});
    });

    test("an RSA PEM key, a PKCS#8 key, an EC key and an OpenSSH key are accepted; encrypted ones and armour around junk are not", () => {
        const crypto = require("crypto");
        const rsa = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
        expect(privateKeyProblem(rsa.export({ type: "pkcs1", format: "pem" }))).toBeUndefined();
        expect(privateKeyProblem(rsa.export({ type: "pkcs8", format: "pem" }))).toBeUndefined();
        expect(privateKeyProblem(crypto.generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "sec1", format: "pem" }))).toBeUndefined();
        expect(privateKeyProblem(fakeKey())).toBeUndefined();
        expect(privateKeyProblem(fakeKey("aes256-ctr"))).toMatch(/passphrase/);
        expect(privateKeyProblem(pem("RSA PRIVATE KEY", "MIIE"))).toMatch(/PEM armour but no private key the program can read/);
        expect(privateKeyProblem(pem("OPENSSH PRIVATE KEY", "aGVsbG8gd29ybGQ="))).toMatch(/not a usable OpenSSH private key \(its body does not start with the openssh-key-v1 header\)/);
        const damaged = fakeKey().replace(/\n(.{20})/, (_, x: string) => `\n${x.split("").reverse().join("")}`);
        expect(privateKeyProblem(damaged)).toMatch(/not a usable OpenSSH private key/);
        expect(privateKeyProblem(pem("ENCRYPTED PRIVATE KEY", "MIIE"))).toMatch(/passphrase/);
        expect(
            privateKeyProblem(pem("RSA PRIVATE KEY", "Proc-Type: 4,ENCRYPTED", "DEK-Info: AES-128-CBC,00", "", "MIIE")),
        ).toMatch(/passphrase/);
    });
});

describe("IP and CIDR helpers", () => {
    test("parse IPv4 strictly", () => {
        expect(parseIPv4("192.0.2.1")?.bytes).toEqual([192, 0, 2, 1]);
        for (const bad of ["256.0.0.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.-4", " 1.2.3.4", "1.2.3.4/32", ""]) {
            expect(parseIPv4(bad)).toBeUndefined();
        }
    });

    test("parse IPv6, including :: and embedded IPv4", () => {
        expect(parseIPv6("::")?.bytes).toEqual(new Array(16).fill(0));
        expect(parseIPv6("::1")?.bytes).toEqual([...new Array(15).fill(0), 1]);
        expect(parseIPv6("2001:db8::ff00:42:8329")?.bytes).toEqual([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0xff, 0, 0, 0x42, 0x83, 0x29]);
        expect(parseIPv6("::ffff:192.0.2.1")?.bytes.slice(10)).toEqual([0xff, 0xff, 192, 0, 2, 1]);
        expect(parseIPv6("1:2:3:4:5:6:7:8")).toBeDefined();
        for (const bad of ["1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "1::2::3", ":::", "12345::", "g::1", "fe80::1%eth0", ":1::", "1::2:", "1:2:3:4:5:6:7::8"]) {
            expect(parseIPv6(bad)).toBeUndefined();
        }
        expect(parseIp("10.0.0.1")?.family).toBe(4);
        expect(parseIp("fd00::1")?.family).toBe(6);
    });

    test("format IPv6 in RFC 5952 form", () => {
        const fmt = (s: string): string => {
            const ip = parseIp(s);
            if (!ip) throw new Error(s);
            return formatIp(ip);
        };
        expect(fmt("2001:0DB8:0000:0000:0000:0000:0000:0001")).toBe("2001:db8::1");
        expect(fmt("2001:db8:0:1:0:0:0:1")).toBe("2001:db8:0:1::1");
        expect(fmt("2001:db8:0:0:1:0:0:1")).toBe("2001:db8::1:0:0:1");
        expect(fmt("2001:db8:0:1:1:1:1:1")).toBe("2001:db8:0:1:1:1:1:1");
        expect(fmt("0:0:0:0:0:0:0:0")).toBe("::");
        expect(fmt("1:0:0:0:0:0:0:0")).toBe("1::");
    });

    test("parse CIDRs and detect host bits", () => {
        expect(parseCidr("10.244.0.0/16")).toEqual({ family: 4, bytes: [10, 244, 0, 0], prefix: 16 });
        expect(parseCidr("10.244.0.0/33")).toBeUndefined();
        expect(parseCidr("10.244.0.0/016")).toBeUndefined();
        expect(parseCidr("10.244.0.0")).toBeUndefined();
        expect(parseCidr("fd00::/129")).toBeUndefined();
        expect(parseCidr("fd00::/128")?.prefix).toBe(128);
        expect(hasHostBits("10.244.1.0/16")).toBe(true);
        expect(hasHostBits("10.244.0.0/16")).toBe(false);
        expect(hasHostBits("10.244.0.128/25")).toBe(false);
        expect(hasHostBits("10.244.0.64/25")).toBe(true);
        expect(hasHostBits("0.0.0.0/0")).toBe(false);
        expect(hasHostBits("fd00:10:96::1/112")).toBe(true);
        expect(hasHostBits("fd00:10:96::/112")).toBe(false);
        expect(formatCidr(cidrNetwork("10.244.1.7/16"))).toBe("10.244.0.0/16");
        expect(formatCidr(cidrNetwork("fd00:10:96:1:2::1/60"))).toBe("fd00:10:96::/60");
        expect(formatCidr(cidrNetwork("192.168.1.77/27"))).toBe("192.168.1.64/27");
    });

    test("IPv4 containment and overlap", () => {
        expect(cidrContains("10.96.0.0/12", "10.100.1.1")).toBe(true);
        expect(cidrContains("10.96.0.0/12", "10.112.0.0")).toBe(false);
        expect(cidrContains("10.96.0.0/12", "10.96.0.0/16")).toBe(true);
        expect(cidrContains("10.96.0.0/16", "10.96.0.0/12")).toBe(false);
        expect(cidrContains("0.0.0.0/0", "203.0.113.9")).toBe(true);
        expect(cidrsOverlap("10.96.0.0/12", "10.100.0.0/16")).toBe(true);
        expect(cidrsOverlap("10.100.0.0/16", "10.96.0.0/12")).toBe(true);
        expect(cidrsOverlap("10.244.0.0/16", "10.96.0.0/12")).toBe(false);
        expect(cidrsOverlap("192.168.0.0/24", "192.168.1.0/24")).toBe(false);
        expect(cidrsOverlap("192.168.0.0/23", "192.168.1.0/24")).toBe(true);
    });

    test("IPv6 containment and overlap; families never mix", () => {
        expect(cidrContains("fd00:10:244::/56", "fd00:10:244:ff::1")).toBe(true);
        expect(cidrContains("fd00:10:244::/56", "fd00:10:245::1")).toBe(false);
        expect(cidrContains("fd00::/8", "fd00:10:96::/112")).toBe(true);
        expect(cidrsOverlap("fd00:10:244::/56", "fd00:10:244:80::/57")).toBe(true);
        expect(cidrsOverlap("fd00:10:244::/57", "fd00:10:244:80::/57")).toBe(false);
        expect(cidrsOverlap("::/0", "2001:db8::/32")).toBe(true);
        expect(cidrsOverlap("0.0.0.0/0", "::/0")).toBe(false);
        expect(cidrContains("::/0", "10.0.0.1")).toBe(false);
        expect(cidrContains("::ffff:0:0/96", "::ffff:10.0.0.1")).toBe(true);
    });

    test("helpers refuse text that is not an address", () => {
        expect(() => cidrsOverlap("10.0.0.0/8", "nope")).toThrow(TypeError);
        expect(() => cidrContains("10.0.0.0/40", "10.0.0.1")).toThrow(/not an IP address or CIDR/);
    });
});

describe("the example stacks", () => {
    const YAML = require("yaml");
    const fs = require("fs");
    const path = require("path");
    /** A Pulumi.<stack>.yaml as the program reads it: project-prefixed keys, the SSH key set as its comment says. */
    const loadStack = (file: string) => {
        const text = fs.readFileSync(path.join(__dirname, "..", file), "utf8") as string;
        const config = YAML.parse(text).config as Record<string, unknown>;
        const project = YAML.parse(fs.readFileSync(path.join(__dirname, "..", "Pulumi.yaml"), "utf8")).name as string;
        const raw: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(config)) {
            expect(k.startsWith(`${project}:`)).toBe(true);
            raw[k.slice(project.length + 1)] = v;
        }
        expect((raw["ssh"] as Record<string, unknown>)["privateKey"]).toBeUndefined();
        (raw["ssh"] as Record<string, unknown>)["privateKey"] = KEY;
        return { text, raw: raw as RawConfig, spec: parseClusterConfig(raw as RawConfig, project) };
    };

    test("Pulumi.dev.yaml is a valid config (with a key set, as its comment says)", () => {
        const { spec } = loadStack("Pulumi.dev.yaml");
        expect(spec.hosts.map((h) => h.roles.join("+"))).toEqual(["control-plane", "worker", "worker"]);
        expect(spec.hosts.every((h) => h.address.startsWith("192.0.2."))).toBe(true);
        expect(renderProblems(spec)).toEqual([]);
    });

    test("Pulumi.prod.yaml is a valid production-shaped config: 3 control planes behind a VIP, workers, mirrors; every command renders", () => {
        const { text, spec } = loadStack("Pulumi.prod.yaml");
        expect(spec.hosts.filter((h) => h.roles.includes("control-plane")).map((h) => h.name)).toEqual(["cp-1", "cp-2", "cp-3"]);
        expect(spec.hosts.filter((h) => !h.roles.includes("control-plane")).length).toBeGreaterThanOrEqual(3);
        expect(spec.hosts.every((h) => h.address.startsWith("192.0.2."))).toBe(true);
        // The API endpoint is a VIP / load balancer, not one of the control planes.
        expect(spec.apiServer.address).toBeDefined();
        expect(spec.hosts.some((h) => h.address === spec.apiServer.address || h.internalAddress === spec.apiServer.address)).toBe(false);
        // Mirror settings: image repository, registry mirrors with a CA, package repository, chart repository.
        expect(spec.kubeadm.imageRepository).not.toBe(DEFAULT_IMAGE_REPOSITORY);
        expect(spec.containerd.registries.some((r) => r.mirrors.length > 0)).toBe(true);
        expect(spec.containerd.registries.some((r) => r.ca !== undefined)).toBe(true);
        expect(spec.packages.localRepository?.apt).toBeDefined();
        expect(spec.packages.localRepository?.rpm).toBeDefined();
        expect(spec.charts["flannel"]?.repo).toBeDefined();
        // Every command the program would run renders and fits in one command line.
        expect(renderProblems(spec)).toEqual([]);
        const steps = planSteps(spec);
        for (const h of spec.hosts) expect(steps.some((s) => s.name === `${h.name}-join` || s.name === `${h.name}-init`)).toBe(true);
        expect(steps.every((s) => s.tooLong === undefined && s.commands.create.length > 0)).toBe(true);
        // The air-gapped add-ons: every image from the site registry, every chart from the mirror, the CRDs from an internal URL.
        expect(spec.addons.imageRegistry).toBe("registry.example.internal/k8s");
        for (const c of ["traefik", "headlamp", "metrics-server"]) expect(spec.charts[c]?.repo).toBeDefined();
        expect(spec.addons.ingress.gatewayApiCrds).toMatch(/^https:\/\/files\.example\.internal\//);
        expect(spec.addons.ingress.nodes).toEqual(["worker-1", "worker-2"]);
        // No secret in the file (comments aside): no key material, no stored secure value, no salt.
        const data = text.split("\n").filter((l) => !/^\s*#/.test(l)).join("\n");
        expect(data).not.toMatch(/PRIVATE KEY|secure:|encryptionsalt:/);
    });
});

describe("values stored as secrets are never quoted", () => {
    const key = fakeKey();
    const keyLine = key.split("\n")[1];

    test("the whole ssh value set to the key (without --path): a problem naming ssh, the key not shown", () => {
        const raw = { ...minimal(), ssh: key };
        const e = captureError(raw, { encoded: true, secretKeys: ["ssh"] });
        expect(e.message).toContain("  - ssh: is not valid JSON (its value is not shown: it is stored as a secret)");
        expect(e.message).toContain("pulumi config set --secret --path ssh.privateKey");
        expect(e.message).not.toContain(keyLine);
        expect(e.message).not.toContain("OPENSSH");
    });

    test("a secret section's bad values are described, not quoted", () => {
        const raw = { ...minimal(), ssh: JSON.stringify({ privateKey: key, user: keyLine.slice(0, 30), port: keyLine }) };
        const e = captureError(raw, { encoded: true, secretKeys: ["ssh"] });
        expect(e.message).toMatch(/ssh\.user: a string of 30 characters \(not shown: it is stored as a secret\) is not a valid user name/);
        expect(e.message).not.toContain(keyLine.slice(0, 20));
    });

    test("ssh.privateKey stored without --secret is refused with the fix", () => {
        const raw = { ...minimal(), ssh: JSON.stringify({ privateKey: key }) };
        const e = captureError(raw, { encoded: true, secretKeys: [] });
        expect(e.message).toContain("  - ssh.privateKey: is stored in plain text in Pulumi.<stack>.yaml (it was set without --secret): set it again as a secret");
        expect(e.message).not.toContain(keyLine);
    });

    test("another section stored as a secret is refused: its values go into commands and plain state", () => {
        const raw = { ...minimal(), network: JSON.stringify({ podSubnet: "10.244.0.0/16" }) };
        const e = captureError(raw, { encoded: true, secretKeys: ["ssh", "network"] });
        expect(e.message).toContain("  - network: is stored as a secret, but the program writes its values into the commands shown by pulumi preview");
    });

    test("a section that is not valid JSON is a problem with its path, not an SDK error", () => {
        const raw = { ...minimal(), hosts: "[{name: cp-1" };
        const e = captureError(raw, { encoded: true, secretKeys: ["ssh"] });
        expect(e.message).toContain(`  - hosts: is not valid JSON (it starts "[{name: cp-1")`);
    });

    test("secret-looking values in every key: no message ever contains one", () => {
        const marker = keyLine.slice(5, 45);
        const poisoned: Record<string, unknown> = {};
        for (const k of ["hosts", "ssh", "kubernetesVersion", "network", "apiServer", "kubeadm", "preflight", "packages", "charts", "proxy", "users"]) {
            poisoned[k] = JSON.stringify({ [marker]: marker, user: marker, privateKey: `${pemArmour("PRIVATE KEY")}\n${marker}\n` });
        }
        poisoned.kubernetesVersion = marker;
        for (const secretKeys of [Object.keys(poisoned), ["ssh"]]) {
            const e = captureError(poisoned as RawConfig, { encoded: true, secretKeys });
            const secretOnes = secretKeys.length > 1 ? e.message : e.message.split("\n").filter((l) => l.startsWith("  - ssh")).join("\n");
            expect(secretOnes.length).toBeGreaterThan(0);
            expect(secretOnes).not.toContain(marker.slice(0, 12));
        }
    });
});

/** A PEM "BEGIN" line for `label`, built at run time (a test marker, not key material). */
function pemArmour(label: string): string {
    return `-----BEGIN ${label}-----`;
}
