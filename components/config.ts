/**
 * Stack configuration -> validated `ClusterSpec`.
 *
 * `parseClusterConfig` is the only place that knows the shape of the stack
 * configuration users write. It checks everything it can before a single SSH
 * connection is made, collects EVERY problem (never stopping at the first),
 * and reports each one with its config path and a message that says what is
 * wrong and how to fix it. The rest of the program reads only the returned
 * model (see `model.ts`).
 *
 * This module is pure apart from checking that a local chart path exists: no Pulumi calls, no other I/O, no dependencies beyond the
 * model and version pins. The small IPv4/IPv6 address and CIDR helpers at the
 * bottom are exported for the components that render addresses.
 */
import {
    ApiServerSpec,
    ChartSource,
    ClusterSpec,
    CniChoice,
    CNI_CHOICES,
    ExtraArg,
    HostSpec,
    KubeadmSpec,
    LocalRepositorySpec,
    PackagesSpec,
    PREFLIGHT_CHECKS,
    PreflightCheck,
    PreflightSpec,
    NetworkSpec,
    PROXY_MODES,
    ProxyMode,
    Role,
    ROLES,
} from "./model";
import {
    IpFamily, IpAddress, Cidr, parseIPv4, parseIPv6, parseIp, parseCidr, formatIp, formatCidr, hasHostBits, cidrNetwork, cidrContains, cidrsOverlap,
} from "./net";
import * as fs from "fs";
import { DEFAULT_IMAGE_REPOSITORY, DEFAULT_KUBERNETES_VERSION, KUBERNETES_MINORS, chartNames } from "./versions";

// ---------------------------------------------------------------------------
// Defaults
// ---------------------------------------------------------------------------

/** SSH user when neither `ssh.user` nor a host's `user` is set: the account cloud images and bare installs share. */
export const DEFAULT_SSH_USER = "root";
/** SSH port when neither `ssh.port` nor a host's `port` is set: the IANA-assigned SSH port (RFC 4253). */
export const DEFAULT_SSH_PORT = 22;
/** Pod network: flannel's default `Network` (kube-flannel.yml `net-conf.json`), which the other CNIs accept too. */
export const DEFAULT_POD_SUBNET = "10.244.0.0/16";
/** Service network: kubeadm's default `networking.serviceSubnet` (`DefaultServicesSubnet` in kubeadm's v1beta4 defaults). */
export const DEFAULT_SERVICE_SUBNET = "10.96.0.0/12";
/** Cluster DNS domain: kubeadm's default `networking.dnsDomain` (`DefaultServiceDNSDomain`). */
export const DEFAULT_DNS_DOMAIN = "cluster.local";
/** Pod network add-on: flannel, the simplest one; its default network is `DEFAULT_POD_SUBNET`. */
export const DEFAULT_CNI: CniChoice = "flannel";
/** API server port: kubeadm's default `localAPIEndpoint.bindPort` (`DefaultAPIBindPort`). */
export const DEFAULT_API_SERVER_PORT = 6443;
/** kube-proxy mode: kube-proxy's own default on Linux (`mode: ""` means iptables). */
export const DEFAULT_PROXY_MODE: ProxyMode = "iptables";

/**
 * kube-controller-manager's default per-node pod CIDR sizes (`--node-cidr-mask-size-ipv4/-ipv6`,
 * 24 and 64), which kubeadm also assumes when it validates `networking.podSubnet`.
 */
const DEFAULT_NODE_CIDR_MASK = { 4: 24, 6: 64 } as const;
/** kubeadm `PodSubnetNodeMaskMaxDiff`: the node mask may be at most 16 bits longer than the pod subnet's. */
const POD_SUBNET_NODE_MASK_MAX_DIFF = 16;
/** kube-apiserver / kubeadm `MaximumBitsForServiceSubnet`: at most 2^20 service addresses. */
const MAX_SERVICE_SUBNET_BITS = 20;
/** The cluster DNS Service takes the 10th address of the service subnet, so it needs at least 16 addresses (4 host bits). */
const MIN_SERVICE_SUBNET_BITS = 4;

const PRIVATE_KEY_FIX = "run `pulumi config set --secret --path ssh.privateKey < ~/.ssh/id_ed25519`";

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/** One problem in the stack config: the config path (e.g. `hosts[2].internalAddress`, `network.podSubnet`) and a message that says what is wrong AND how to fix it. */
export interface ConfigProblem {
    path: string;
    message: string;
}

/**
 * Thrown with every problem found, all at once. Its `message` is a readable
 * multi-line list: "Invalid stack configuration (N problems):" then one line
 * per problem "  - <path>: <message>".
 */
export class ConfigError extends Error {
    readonly problems: ConfigProblem[];

    constructor(problems: ConfigProblem[]) {
        super(formatProblems(problems));
        this.name = "ConfigError";
        this.problems = problems.map((p) => ({ ...p }));
        Object.setPrototypeOf(this, new.target.prototype);
    }
}

function formatProblems(problems: readonly ConfigProblem[]): string {
    const n = problems.length;
    const head = `Invalid stack configuration (${n} ${n === 1 ? "problem" : "problems"}):`;
    return [head, ...problems.map((p) => `  - ${p.path}: ${p.message}`)].join("\n");
}

/** The raw stack config values exactly as `pulumi.Config#getObject`/`get` return them (unknown types: users write YAML). */
export interface RawConfig {
    hosts?: unknown;
    ssh?: unknown;
    kubernetesVersion?: unknown;
    network?: unknown;
    apiServer?: unknown;
    kubeadm?: unknown;
    preflight?: unknown;
    packages?: unknown;
    charts?: unknown;
}

/** Order in which sections are reported, whatever order they were checked in. */
const SECTION_ORDER = ["hosts", "ssh", "kubernetesVersion", "network", "apiServer", "kubeadm", "preflight", "packages", "charts"];

class Problems {
    private readonly list: { path: string; message: string; seq: number }[] = [];

    add(path: string, message: string): void {
        this.list.push({ path, message, seq: this.list.length });
    }

    get count(): number {
        return this.list.length;
    }

    /** Any problem at `path` or below it. */
    hasUnder(path: string): boolean {
        return this.list.some((p) => p.path === path || p.path.startsWith(path + ".") || p.path.startsWith(path + "["));
    }

    /** Sorted by section, then host index, then the order they were found in: stable for a given input. */
    sorted(): ConfigProblem[] {
        const key = (path: string): [number, number] => {
            const section = /^[A-Za-z]+/.exec(path)?.[0] ?? "";
            const s = SECTION_ORDER.indexOf(section);
            const host = /^hosts\[(\d+)\]/.exec(path);
            return [s < 0 ? SECTION_ORDER.length : s, host ? Number(host[1]) : -1];
        };
        return [...this.list]
            .sort((a, b) => {
                const [sa, ha] = key(a.path);
                const [sb, hb] = key(b.path);
                return sa - sb || ha - hb || a.seq - b.seq;
            })
            .map(({ path, message }) => ({ path, message }));
    }
}

// ---------------------------------------------------------------------------
// Small generic helpers
// ---------------------------------------------------------------------------

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
    return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** YAML `key:` with nothing after it gives null; treat it like an unset key. */
function isAbsent(v: unknown): v is undefined | null {
    return v === undefined || v === null;
}

/** Config path of a child key, in the syntax `pulumi config set --path` accepts. */
function child(path: string, key: string): string {
    return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

function item(path: string, index: number): string {
    return `${path}[${index}]`;
}

/** A value quoted for a message; long strings are shortened. */
function show(v: unknown): string {
    if (typeof v === "string") {
        const s = v.length > 60 ? v.slice(0, 57) + "..." : v;
        return JSON.stringify(s);
    }
    if (typeof v === "number" || typeof v === "boolean") return String(v);
    return describe(v);
}

/** What kind of value this is, for "got ..." in messages. */
function describe(v: unknown): string {
    if (v === null) return "null";
    if (Array.isArray(v)) return "a list";
    if (typeof v === "object") return "an object";
    if (typeof v === "string") return `the string ${show(v)}`;
    if (typeof v === "number") return `the number ${v}`;
    if (typeof v === "boolean") return `the boolean ${v}`;
    return typeof v;
}

function quoteList(values: readonly string[]): string {
    const q = values.map((v) => JSON.stringify(v));
    if (q.length <= 1) return q.join("");
    return `${q.slice(0, -1).join(", ")} or ${q[q.length - 1]}`;
}

/** Levenshtein distance, for "did you mean" suggestions. */
export function editDistance(a: string, b: string): number {
    let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
        const cur = [i];
        for (let j = 1; j <= b.length; j++) {
            const cost = a[i - 1] === b[j - 1] ? 0 : 1;
            cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
        }
        prev = cur;
    }
    return prev[b.length] ?? 0;
}

/** The closest candidate when it is close enough to be a typo (case ignored), else undefined. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
    const w = word.toLowerCase();
    let best: string | undefined;
    let bestDistance = Infinity;
    for (const c of candidates) {
        const d = editDistance(w, c.toLowerCase());
        if (d < bestDistance) {
            best = c;
            bestDistance = d;
        }
    }
    const allowed = w.length <= 4 ? 1 : w.length <= 8 ? 2 : 3;
    if (bestDistance <= allowed) return best;
    // A shortened or extended name ("imageRepo" for "imageRepository").
    if (w.length >= 4) {
        const partial = candidates.filter((c) => c.toLowerCase().startsWith(w) || w.startsWith(c.toLowerCase()));
        if (partial.length === 1) return partial[0];
    }
    return undefined;
}

/**
 * Report keys of `obj` that are not in `known`. Suggest the closest known key
 * (or a well-known alias) so a typo such as `podSubnett` is obvious.
 */
function checkKeys(
    obj: Obj,
    known: readonly string[],
    path: string,
    problems: Problems,
    aliases: Record<string, string> = {},
): void {
    for (const key of Object.keys(obj)) {
        if (known.includes(key)) continue;
        const suggestion = aliases[key] ?? closest(key, known);
        const fix = suggestion
            ? `did you mean ${JSON.stringify(suggestion)}?`
            : `remove it; the known settings here are ${quoteList(known)}`;
        problems.add(child(path, key), `unknown setting ${JSON.stringify(key)}: ${fix}`);
    }
}

/** A TCP port given as a number (or a decimal string, as `pulumi config set --path` may store it). */
function parsePort(v: unknown, path: string, problems: Problems, example: number): number | undefined {
    let n: number | undefined;
    if (typeof v === "number") n = v;
    else if (typeof v === "string" && /^[0-9]{1,5}$/.test(v.trim())) n = Number(v.trim());
    if (n !== undefined && Number.isInteger(n) && n >= 1 && n <= 65535) return n;
    problems.add(path, `${show(v)} is not a valid port: use a whole number from 1 to 65535 (e.g. ${example})`);
    return undefined;
}

/** POSIX-portable user name as `useradd` accepts it: no leading '-', at most 32 characters. */
const POSIX_USER = /^[a-z_][a-z0-9_.-]*\$?$/;

function parseUser(v: unknown, path: string, problems: Problems): string | undefined {
    if (typeof v === "string" && v.length <= 32 && POSIX_USER.test(v)) return v;
    const hint =
        typeof v === "string" && v.includes("@")
            ? ` (put only the user name here; the host goes in \`address\`)`
            : "";
    problems.add(
        path,
        `${show(v)} is not a valid user name${hint}: use a POSIX user name of lowercase letters, digits, '_', '.' ` +
            `or '-', starting with a letter or '_', at most 32 characters (e.g. "ubuntu")`,
    );
    return undefined;
}

// ---------------------------------------------------------------------------
// Names and addresses
// ---------------------------------------------------------------------------

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

/** RFC 1123 label as Kubernetes defines it (node names): lowercase, <= 63 characters. */
export function isDnsLabel(s: string): boolean {
    return s.length >= 1 && s.length <= 63 && DNS_LABEL.test(s);
}

/**
 * Why `s` is not an RFC 1123 subdomain (lowercase DNS name, <= 253
 * characters, labels <= 63), or undefined when it is one. A name whose last
 * label is all digits is refused: it is a mistyped IPv4 address.
 */
export function dnsNameProblem(s: string): string | undefined {
    if (s.length === 0) return "it is empty";
    if (s.endsWith(".")) return "remove the trailing dot";
    if (s.length > 253) return "it is longer than 253 characters";
    if (s !== s.toLowerCase() && isDnsName(s.toLowerCase())) return `write it in lowercase: ${JSON.stringify(s.toLowerCase())}`;
    const labels = s.split(".");
    for (const label of labels) {
        if (label.length === 0) return "it has an empty label ('..' or a leading dot)";
        if (label.length > 63) return `the label ${JSON.stringify(label.slice(0, 20) + "...")} is longer than 63 characters`;
        if (!DNS_LABEL.test(label)) {
            return `the label ${JSON.stringify(label)} must use lowercase letters, digits and '-', starting and ending with a letter or digit`;
        }
    }
    if (/^[0-9]+$/.test(labels[labels.length - 1] ?? "")) return "its last label is all digits";
    return undefined;
}

export function isDnsName(s: string): boolean {
    return dnsNameProblem(s) === undefined;
}

/** "CP 1" -> "cp-1": the nearest valid node name, for suggestions. */
function suggestNodeName(name: string): string {
    const s = name
        .toLowerCase()
        .replace(/[^a-z0-9]+/g, "-")
        .replace(/^-+|-+$/g, "")
        .slice(0, 63)
        .replace(/-+$/g, "");
    return s.length > 0 ? s : "cp-1";
}

type Address = { ok: true; value: string; ip?: IpAddress } | { ok: false; reason: string };

/**
 * Classify a host address: an IP (normalised to its canonical text) or a DNS
 * name. On failure `reason` already says how to fix it.
 */
function classifyAddress(raw: string, portSetting: string, allowWildcard = false): Address {
    const s = raw.trim();
    const generic =
        `use an IPv4 or IPv6 address (e.g. "192.0.2.10") or a lowercase DNS name (e.g. "cp-1.example.com")`;
    if (s.length === 0) return { ok: false, reason: `it is empty: ${generic}` };
    if (s !== raw) return { ok: false, reason: `remove the surrounding spaces: ${JSON.stringify(s)}` };
    const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(s);
    if (scheme) {
        const rest = s.slice(scheme[0].length).replace(/\/.*$/, "");
        return { ok: false, reason: `drop the scheme and any path: write ${JSON.stringify(rest)}` };
    }
    if (s.includes("@")) return { ok: false, reason: `put the user name in \`user\` and only the host here` };
    if (s.includes("/")) return { ok: false, reason: `an address, not a subnet or path: ${generic}` };
    const bracketed = /^\[(.*)\](:[0-9]+)?$/.exec(s);
    if (bracketed) {
        return {
            ok: false,
            reason: `write IPv6 addresses without brackets${bracketed[2] ? ` and put the port in \`${portSetting}\`` : ""}: ${JSON.stringify(bracketed[1])}`,
        };
    }
    if (s.includes(":")) {
        const hostPort = /^([^:]+):([0-9]+)$/.exec(s);
        if (hostPort) return { ok: false, reason: `put the port in \`${portSetting}\` and only the host here: ${JSON.stringify(hostPort[1])}` };
        if (s.includes("%")) return { ok: false, reason: `IPv6 zone indexes ("%eth0") are not supported: use a global or unique-local IPv6 address` };
        const ip6 = parseIPv6(s);
        if (!ip6) return { ok: false, reason: `it is not a valid IPv6 address: write eight groups of up to four hex digits, "::" at most once (e.g. "2001:db8::10")` };
        return { ok: true, value: formatIp(ip6), ip: ip6 };
    }
    if (/^[0-9.]+$/.test(s)) {
        const ip4 = parseIPv4(s);
        if (!ip4) {
            return {
                ok: false,
                reason: `it is not a valid IPv4 address: write four numbers from 0 to 255 separated by dots, without leading zeros (e.g. "192.0.2.10")`,
            };
        }
        return { ok: true, value: formatIp(ip4), ip: ip4 };
    }
    const name = allowWildcard && s.startsWith("*.") ? s.slice(2) : s;
    const problem = dnsNameProblem(name);
    if (problem) return { ok: false, reason: `it is not a valid DNS name (${problem}): ${generic}` };
    return { ok: true, value: s };
}

/** Addresses no host or endpoint can have: unspecified and multicast. */
function unusableIp(ip: IpAddress): string | undefined {
    if (ip.bytes.every((b) => b === 0)) return "the unspecified address";
    if (ip.family === 4 && (ip.bytes[0] ?? 0) >= 224 && (ip.bytes[0] ?? 0) <= 239) return "a multicast address";
    if (ip.family === 6 && ip.bytes[0] === 0xff) return "a multicast address";
    if (ip.family === 4 && ip.bytes.every((b) => b === 255)) return "the broadcast address";
    return undefined;
}

function isLoopback(ip: IpAddress): boolean {
    if (ip.family === 4) return ip.bytes[0] === 127;
    return ip.bytes.slice(0, 15).every((b) => b === 0) && ip.bytes[15] === 1;
}

// ---------------------------------------------------------------------------
// Sections
// ---------------------------------------------------------------------------

const HOST_KEYS = ["name", "address", "internalAddress", "roles", "user", "port"] as const;
const HOST_ALIASES: Record<string, string> = {
    hostname: "name",
    host: "address",
    ip: "address",
    publicAddress: "address",
    externalAddress: "address",
    internalIP: "internalAddress",
    internalIp: "internalAddress",
    privateAddress: "internalAddress",
    privateIp: "internalAddress",
    nodeIP: "internalAddress",
    nodeIp: "internalAddress",
    role: "roles",
    sshUser: "user",
    username: "user",
    sshPort: "port",
};
const SSH_KEYS = ["user", "port", "privateKey"] as const;
const SSH_ALIASES: Record<string, string> = { key: "privateKey", privateKeyFile: "privateKey", username: "user" };
const NETWORK_KEYS = ["podSubnet", "serviceSubnet", "dnsDomain", "cni"] as const;
const NETWORK_ALIASES: Record<string, string> = {
    podCidr: "podSubnet",
    podCIDR: "podSubnet",
    clusterCidr: "podSubnet",
    clusterCIDR: "podSubnet",
    serviceCidr: "serviceSubnet",
    serviceCIDR: "serviceSubnet",
    plugin: "cni",
};
const API_SERVER_KEYS = ["address", "port", "extraSans"] as const;
const API_SERVER_ALIASES: Record<string, string> = {
    endpoint: "address",
    controlPlaneEndpoint: "address",
    certSANs: "extraSans",
    certSans: "extraSans",
    sans: "extraSans",
};
const EXTRA_ARG_SETTINGS = [
    "apiServerExtraArgs",
    "controllerManagerExtraArgs",
    "schedulerExtraArgs",
    "kubeletExtraArgs",
] as const;
const KUBEADM_KEYS = ["imageRepository", ...EXTRA_ARG_SETTINGS, "kubeProxyMode", "kubelet"] as const;
const KUBEADM_ALIASES: Record<string, string> = {
    proxyMode: "kubeProxyMode",
    kubeletConfiguration: "kubelet",
};

/**
 * KubeletConfiguration fields the program writes itself (or derives from
 * other settings); setting them in `kubeadm.kubelet` would silently fight it.
 */
const KUBELET_OWNED: Record<string, string> = {
    kind: "the program writes the KubeletConfiguration header itself; give only its fields",
    apiVersion: "the program writes the KubeletConfiguration header itself; give only its fields",
    cgroupDriver: "the program sets it to match containerd (systemd); remove it",
    clusterDomain: "it is derived from `network.dnsDomain`; set that instead",
    clusterDNS: "it is derived from `network.serviceSubnet`; set that instead",
};

interface ParsedHost {
    index: number;
    name?: string;
    address?: string;
    addressIp?: IpAddress;
    internalAddress?: string;
    internalIp?: IpAddress;
    roles?: Role[];
    user?: string;
    port?: number;
}

function parseHosts(raw: unknown, problems: Problems): ParsedHost[] {
    const example = `e.g. \`hosts: [{name: cp-1, address: 192.0.2.10, roles: [control-plane, worker]}]\``;
    if (isAbsent(raw)) {
        problems.add("hosts", `no hosts are configured: list at least one host with the control-plane role (${example})`);
        return [];
    }
    if (!Array.isArray(raw)) {
        problems.add("hosts", `must be a list of hosts, got ${describe(raw)} (${example})`);
        return [];
    }
    if (raw.length === 0) {
        problems.add("hosts", `the list is empty: add at least one host with the control-plane role (${example})`);
        return [];
    }
    const hosts: ParsedHost[] = [];
    raw.forEach((h, i) => {
        const path = item("hosts", i);
        const host: ParsedHost = { index: i };
        hosts.push(host);
        if (!isObject(h)) {
            problems.add(path, `each host must be an object with name, address and roles, got ${describe(h)}`);
            return;
        }
        checkKeys(h, HOST_KEYS, path, problems, HOST_ALIASES);

        // name
        const name = h["name"];
        if (isAbsent(name) || name === "") {
            problems.add(child(path, "name"), `is required: give each host a node name (e.g. "cp-1")`);
        } else if (typeof name !== "string") {
            problems.add(child(path, "name"), `must be a string, got ${describe(name)}: quote it (e.g. "node-${String(name)}")`);
        } else if (name.length > 63) {
            problems.add(child(path, "name"), `${show(name)} is ${name.length} characters long: node names are at most 63 (e.g. ${JSON.stringify(suggestNodeName(name))})`);
        } else if (!isDnsLabel(name)) {
            problems.add(
                child(path, "name"),
                `${show(name)} is not a valid node name: use lowercase letters, digits and '-', starting and ending ` +
                    `with a letter or digit (e.g. ${JSON.stringify(suggestNodeName(name))})`,
            );
        } else {
            host.name = name;
        }

        // address
        const address = h["address"];
        if (isAbsent(address) || address === "") {
            problems.add(child(path, "address"), `is required: give the IP address or DNS name SSH connects to (e.g. "192.0.2.10")`);
        } else if (typeof address !== "string") {
            problems.add(child(path, "address"), `must be a string, got ${describe(address)}: give an IP address or DNS name (e.g. "192.0.2.10")`);
        } else {
            const a = classifyAddress(address, `hosts[${i}].port`);
            if (!a.ok) {
                problems.add(child(path, "address"), `${show(address)} is not a valid address: ${a.reason}`);
            } else if (a.ip && unusableIp(a.ip)) {
                problems.add(child(path, "address"), `${show(address)} is ${unusableIp(a.ip)}: give the host's real IP address or DNS name`);
            } else {
                host.address = a.value;
                if (a.ip) host.addressIp = a.ip;
            }
        }

        // internalAddress
        const internal = h["internalAddress"];
        if (!isAbsent(internal)) {
            const p = child(path, "internalAddress");
            const ip = typeof internal === "string" ? parseIp(internal) : undefined;
            if (typeof internal !== "string") {
                problems.add(p, `must be an IP address string, got ${describe(internal)} (e.g. "10.0.0.10")`);
            } else if (!ip) {
                const a = classifyAddress(internal, `hosts[${i}].port`);
                const why = a.ok ? "a DNS name is not allowed here" : a.reason;
                problems.add(
                    p,
                    `${show(internal)} is not an IP address (${why}): give the IPv4 or IPv6 address the node uses inside the cluster (e.g. "10.0.0.10"), or remove internalAddress`,
                );
            } else if (unusableIp(ip)) {
                problems.add(p, `${show(internal)} is ${unusableIp(ip)}: give the IP address the node uses inside the cluster`);
            } else if (isLoopback(ip)) {
                problems.add(p, `${show(internal)} is a loopback address, which other nodes cannot reach: give the host's LAN address`);
            } else {
                host.internalAddress = formatIp(ip);
                host.internalIp = ip;
            }
        } else if (host.addressIp && isLoopback(host.addressIp)) {
            problems.add(
                child(path, "address"),
                `${show(host.address)} is a loopback address: the node would advertise it to the cluster; set \`internalAddress\` to the host's LAN address`,
            );
        }

        // roles
        const roles = h["roles"];
        const rolesPath = child(path, "roles");
        if (isAbsent(roles)) {
            problems.add(rolesPath, `is required: list the host's roles, ${quoteList(ROLES)} or both (e.g. roles: [worker])`);
        } else if (!Array.isArray(roles)) {
            const hint = typeof roles === "string" ? ` (write roles: [${roles}])` : "";
            problems.add(rolesPath, `must be a list of roles, got ${describe(roles)}${hint}: use ${quoteList(ROLES)} or both`);
        } else if (roles.length === 0) {
            problems.add(rolesPath, `is empty: give the host at least one role, ${quoteList(ROLES)}`);
        } else {
            const found = new Set<Role>();
            let ok = true;
            roles.forEach((r, j) => {
                if (typeof r === "string" && (ROLES as readonly string[]).includes(r)) {
                    found.add(r as Role);
                    return;
                }
                ok = false;
                const suggestion =
                    r === "master" || r === "controlplane" || r === "control_plane"
                        ? `it was renamed; use "control-plane"`
                        : typeof r === "string" && closest(r, ROLES)
                          ? `did you mean ${JSON.stringify(closest(r, ROLES))}?`
                          : `use ${quoteList(ROLES)}`;
                problems.add(item(rolesPath, j), `${show(r)} is not a role: ${suggestion}`);
            });
            if (ok) host.roles = ROLES.filter((r) => found.has(r));
        }

        // user / port overrides
        if (!isAbsent(h["user"])) {
            const u = parseUser(h["user"], child(path, "user"), problems);
            if (u !== undefined) host.user = u;
        }
        if (!isAbsent(h["port"])) {
            const p = parsePort(h["port"], child(path, "port"), problems, 22);
            if (p !== undefined) host.port = p;
        }
    });

    // Cross-host checks: unique names, unique addresses.
    const names = new Map<string, number>();
    const allNames = new Set(hosts.map((h) => h.name).filter((n): n is string => n !== undefined));
    const addresses = new Map<string, number>();
    for (const host of hosts) {
        const path = item("hosts", host.index);
        if (host.name !== undefined) {
            const first = names.get(host.name);
            if (first !== undefined) {
                problems.add(
                    child(path, "name"),
                    `${show(host.name)} is already the name of hosts[${first}]: give each host a unique node name (e.g. ${JSON.stringify(uniqueName(host.name, allNames))})`,
                );
            } else {
                names.set(host.name, host.index);
            }
        }
        const own: [string, string | undefined][] = [
            ["address", host.address],
            ["internalAddress", host.internalAddress],
        ];
        for (const [key, value] of own) {
            if (value === undefined) continue;
            const first = addresses.get(value.toLowerCase());
            if (first !== undefined && first !== host.index) {
                problems.add(
                    child(path, key),
                    `${show(value)} is already used by hosts[${first}]: each host needs its own address (check for a copy-paste mistake)`,
                );
            }
        }
        for (const [, value] of own) {
            if (value !== undefined && !addresses.has(value.toLowerCase())) addresses.set(value.toLowerCase(), host.index);
        }
    }

    const validRoles = hosts.filter((h) => h.roles !== undefined);
    if (!validRoles.some((h) => h.roles?.includes("control-plane"))) {
        problems.add(
            "hosts",
            `no host has the control-plane role: add "control-plane" to the roles of at least one host ` +
                `(a single-host cluster uses roles: [control-plane, worker])`,
        );
    }
    return hosts;
}

function uniqueName(name: string, used: ReadonlySet<string>): string {
    const base = name.replace(/-?[0-9]+$/, "") || "node";
    for (let n = 2; ; n++) {
        const candidate = `${base.slice(0, 55)}-${n}`;
        if (!used.has(candidate)) return candidate;
    }
}

interface ParsedSsh {
    user: string;
    port: number;
}

function parseSsh(raw: unknown, problems: Problems): ParsedSsh {
    const result: ParsedSsh = { user: DEFAULT_SSH_USER, port: DEFAULT_SSH_PORT };
    if (isAbsent(raw)) {
        problems.add("ssh.privateKey", `no SSH private key is set: ${PRIVATE_KEY_FIX}`);
        return result;
    }
    if (!isObject(raw)) {
        problems.add(
            "ssh",
            `must be an object with user, port and privateKey, got ${describe(raw)}: set its fields, ` +
                `e.g. \`pulumi config set --path ssh.user ubuntu\` and ${PRIVATE_KEY_FIX.replace(/^run /, "")}`,
        );
        return result;
    }
    checkKeys(raw, SSH_KEYS, "ssh", problems, SSH_ALIASES);
    if (!isAbsent(raw["user"])) {
        const u = parseUser(raw["user"], "ssh.user", problems);
        if (u !== undefined) result.user = u;
    }
    if (!isAbsent(raw["port"])) {
        const p = parsePort(raw["port"], "ssh.port", problems, 22);
        if (p !== undefined) result.port = p;
    }
    const keyProblem = privateKeyProblem(raw["privateKey"]);
    if (keyProblem) problems.add("ssh.privateKey", keyProblem);
    return result;
}

/**
 * Why `key` cannot be used as the SSH private key, or undefined when it looks
 * right. Messages never quote the key.
 */
export function privateKeyProblem(key: unknown): string | undefined {
    if (isAbsent(key)) return `no SSH private key is set: ${PRIVATE_KEY_FIX}`;
    if (typeof key !== "string") return `must be the text of a private key, got ${isObject(key) || Array.isArray(key) ? describe(key) : typeof key}: ${PRIVATE_KEY_FIX}`;
    const text = key.trim();
    if (text.length === 0) return `is empty: ${PRIVATE_KEY_FIX}`;
    if (/^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-|sk-(ssh|ecdsa))/.test(text) || /-----BEGIN (SSH2 |RSA )?PUBLIC KEY-----/.test(text)) {
        return `is a public key: set the private key (the file without ".pub"): ${PRIVATE_KEY_FIX}`;
    }
    if (text.startsWith("PuTTY-User-Key-File")) {
        return `is a PuTTY key: convert it with \`puttygen key.ppk -O private-openssh -o id_key\`, then run \`pulumi config set --secret --path ssh.privateKey < id_key\``;
    }
    const begin = /-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY-----/.exec(text);
    if (!begin) {
        if (!text.includes("\n") && /^(~|\.{0,2}\/|[A-Za-z]:\\)/.test(text)) {
            return `looks like a file path, but the value must be the key's contents: ${PRIVATE_KEY_FIX}`;
        }
        return `does not look like a private key (expected a "-----BEGIN ... PRIVATE KEY-----" block): ${PRIVATE_KEY_FIX}`;
    }
    const kind = begin[1] ?? "";
    const endMarker = `-----END ${kind}PRIVATE KEY-----`;
    const end = text.indexOf(endMarker, begin.index);
    if (end < 0) {
        return `is incomplete (no "${endMarker}" line; was it pasted on one line or cut short?): ${PRIVATE_KEY_FIX}`;
    }
    const body = text.slice(begin.index + begin[0].length, end);
    const passphrase =
        `is protected by a passphrase, which the program cannot type: use a key without one ` +
        `(remove it from a copy with \`ssh-keygen -p -N "" -f <copy>\`), then ${PRIVATE_KEY_FIX}`;
    if (kind === "ENCRYPTED " || /Proc-Type:\s*4,ENCRYPTED/.test(body)) return passphrase;
    if (kind === "OPENSSH " && openSshKeyIsEncrypted(body)) return passphrase;
    return undefined;
}

/** OpenSSH key format (PROTOCOL.key): "openssh-key-v1\0", then the cipher name; "none" means no passphrase. */
function openSshKeyIsEncrypted(body: string): boolean {
    const data = Buffer.from(body.replace(/\s+/g, ""), "base64");
    const magic = "openssh-key-v1\0";
    if (data.length < magic.length + 4 || data.toString("latin1", 0, magic.length) !== magic) return false;
    const len = data.readUInt32BE(magic.length);
    const start = magic.length + 4;
    if (start + len > data.length) return false;
    return data.toString("latin1", start, start + len) !== "none";
}

function parseKubernetesVersion(raw: unknown, problems: Problems): string {
    if (isAbsent(raw)) return DEFAULT_KUBERNETES_VERSION;
    const minors = Object.keys(KUBERNETES_MINORS) as (keyof typeof KUBERNETES_MINORS)[];
    const supported = `supported minors: ${minors.join(", ")}`;
    const latest = (minor: string): string | undefined =>
        (KUBERNETES_MINORS as Record<string, { latestPatch: string } | undefined>)[minor]?.latestPatch;
    const isNumber = typeof raw === "number";
    if (typeof raw !== "string" && !isNumber) {
        problems.add("kubernetesVersion", `must be a version string such as "${DEFAULT_KUBERNETES_VERSION}", got ${describe(raw)}`);
        return DEFAULT_KUBERNETES_VERSION;
    }
    const quoteHint = isNumber ? ` (quote it in YAML, or YAML reads it as a number)` : "";
    const text = String(raw).trim().replace(/^v/, "");
    const full = /^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$/.exec(text);
    const bare = /^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$/.exec(text);
    if (full) {
        const minor = `${full[1]}.${full[2]}`;
        if (latest(minor) === undefined) {
            problems.add(
                "kubernetesVersion",
                `Kubernetes ${minor} is not supported: use a version of a supported minor (${supported}), e.g. "${DEFAULT_KUBERNETES_VERSION}"`,
            );
        }
        return text;
    }
    if (bare) {
        const minor = `${bare[1]}.${bare[2]}`;
        const patch = latest(minor);
        problems.add(
            "kubernetesVersion",
            patch
                ? `${show(String(raw))} has no patch number: give a full version such as "${patch}" (the latest ${minor} patch)${quoteHint}`
                : `Kubernetes ${minor} is not supported and the version has no patch number: use a full version of a supported minor (${supported}), e.g. "${DEFAULT_KUBERNETES_VERSION}"${quoteHint}`,
        );
        return DEFAULT_KUBERNETES_VERSION;
    }
    const pre = /^([0-9]+\.[0-9]+\.[0-9]+)[-+]/.exec(text);
    problems.add(
        "kubernetesVersion",
        pre
            ? `${show(String(raw))} is a pre-release or build version: use a released version such as "${pre[1]}" (${supported})`
            : `${show(String(raw))} is not a Kubernetes version: write MAJOR.MINOR.PATCH, e.g. "${DEFAULT_KUBERNETES_VERSION}" (${supported})`,
    );
    return DEFAULT_KUBERNETES_VERSION;
}

interface ParsedNetwork {
    podSubnet?: Cidr;
    serviceSubnet?: Cidr;
    dnsDomain?: string;
    cni?: CniChoice;
}

function parseSubnet(raw: unknown, path: string, fallback: string, problems: Problems): Cidr | undefined {
    if (isAbsent(raw)) return parseCidr(fallback);
    const example = `e.g. ${JSON.stringify(fallback)}`;
    if (typeof raw !== "string") {
        problems.add(path, `must be a CIDR string, got ${describe(raw)} (${example})`);
        return undefined;
    }
    const s = raw.trim();
    if (s.includes(",")) {
        problems.add(path, `${show(raw)} lists several subnets, but dual-stack is not supported: give one CIDR (${example})`);
        return undefined;
    }
    const cidr = parseCidr(s);
    if (!cidr) {
        const ip = parseIp(s);
        problems.add(
            path,
            ip
                ? `${show(raw)} is an address, not a subnet: add a prefix length (e.g. ${JSON.stringify(`${formatIp(ip)}/${ip.family === 4 ? 16 : 64}`)})`
                : `${show(raw)} is not a valid CIDR: write an IPv4 or IPv6 network address and a prefix length (${example})`,
        );
        return undefined;
    }
    if (hasHostBits(cidr)) {
        const network = formatCidr(cidrNetwork(cidr));
        problems.add(path, `${show(raw)} has host bits set: use the network address ${JSON.stringify(network)}`);
        return undefined;
    }
    return cidr;
}

function parseNetwork(raw: unknown, problems: Problems): ParsedNetwork {
    const result: ParsedNetwork = {};
    let obj: Obj = {};
    if (!isAbsent(raw)) {
        if (!isObject(raw)) {
            problems.add("network", `must be an object with podSubnet, serviceSubnet, dnsDomain and cni, got ${describe(raw)}`);
            return result;
        }
        obj = raw;
        checkKeys(obj, NETWORK_KEYS, "network", problems, NETWORK_ALIASES);
    }

    const pod = parseSubnet(obj["podSubnet"], "network.podSubnet", DEFAULT_POD_SUBNET, problems);
    if (pod) result.podSubnet = pod;
    const service = parseSubnet(obj["serviceSubnet"], "network.serviceSubnet", DEFAULT_SERVICE_SUBNET, problems);
    if (service) {
        const hostBits = (service.family === 4 ? 32 : 128) - service.prefix;
        const maxPrefix = (service.family === 4 ? 32 : 128) - MAX_SERVICE_SUBNET_BITS;
        const minPrefix = (service.family === 4 ? 32 : 128) - MIN_SERVICE_SUBNET_BITS;
        const example = service.family === 4 ? DEFAULT_SERVICE_SUBNET : "fd00:10:96::/108";
        if (hostBits > MAX_SERVICE_SUBNET_BITS) {
            problems.add(
                "network.serviceSubnet",
                `${show(obj["serviceSubnet"])} is too large: kube-apiserver refuses more than 2^20 service addresses, so an ` +
                    `IPv${service.family} service subnet needs a prefix of /${maxPrefix} or longer (e.g. ${JSON.stringify(example)})`,
            );
        } else if (hostBits < MIN_SERVICE_SUBNET_BITS) {
            problems.add(
                "network.serviceSubnet",
                `${show(obj["serviceSubnet"])} is too small: the cluster DNS Service takes the 10th address, so use a prefix ` +
                    `of /${minPrefix} or shorter (e.g. ${JSON.stringify(example)})`,
            );
        } else {
            result.serviceSubnet = service;
        }
    }
    if (pod && service && pod.family !== service.family) {
        problems.add(
            "network.serviceSubnet",
            `${show(formatCidr(service))} is IPv${service.family} but the pod subnet ${JSON.stringify(formatCidr(pod))} is IPv${pod.family}: ` +
                `use the same IP family for both (dual-stack is not supported)`,
        );
        delete result.serviceSubnet;
    } else if (pod && service && cidrsOverlap(pod, service)) {
        problems.add(
            "network.serviceSubnet",
            `${show(formatCidr(service))} overlaps the pod subnet ${JSON.stringify(formatCidr(pod))}: choose ranges that do not overlap ` +
                `(the defaults are ${DEFAULT_POD_SUBNET} for pods and ${DEFAULT_SERVICE_SUBNET} for services)`,
        );
    }

    const dns = obj["dnsDomain"];
    if (isAbsent(dns)) {
        result.dnsDomain = DEFAULT_DNS_DOMAIN;
    } else if (typeof dns !== "string") {
        problems.add("network.dnsDomain", `must be a DNS domain string, got ${describe(dns)} (e.g. "${DEFAULT_DNS_DOMAIN}")`);
    } else {
        const why = dnsNameProblem(dns);
        if (why) {
            problems.add(
                "network.dnsDomain",
                `${show(dns)} is not a valid DNS domain (${why}): use lowercase labels of letters, digits and '-' separated by dots (e.g. "${DEFAULT_DNS_DOMAIN}")`,
            );
        } else {
            result.dnsDomain = dns;
        }
    }

    const cni = obj["cni"];
    if (isAbsent(cni)) {
        result.cni = DEFAULT_CNI;
    } else if (typeof cni === "string" && (CNI_CHOICES as readonly string[]).includes(cni)) {
        result.cni = cni as CniChoice;
    } else {
        const guess = typeof cni === "string" ? closest(cni, CNI_CHOICES) : undefined;
        problems.add(
            "network.cni",
            `${show(cni)} is not a supported CNI: use one of ${quoteList(CNI_CHOICES)} ("none": you install the pod network yourself)${guess ? ` (did you mean ${JSON.stringify(guess)}?)` : ""}`,
        );
    }
    return result;
}

/** Per-node pod CIDR size: kube-controller-manager's flag when the user set it, else its default. */
function nodeCidrMask(family: IpFamily, controllerManagerArgs: readonly ExtraArg[]): number | undefined {
    const names = family === 4 ? ["node-cidr-mask-size-ipv4", "node-cidr-mask-size"] : ["node-cidr-mask-size-ipv6"];
    for (const name of names) {
        const arg = [...controllerManagerArgs].reverse().find((a) => a.name === name);
        if (arg && /^[0-9]+$/.test(arg.value)) return Number(arg.value);
    }
    return DEFAULT_NODE_CIDR_MASK[family];
}

/** Pod subnet vs per-node CIDR size and node count (kubeadm's ValidatePodSubnetNodeMask, plus capacity). */
function checkPodSubnetSize(
    pod: Cidr,
    controllerManagerArgs: readonly ExtraArg[],
    hostCount: number,
    problems: Problems,
): void {
    const allocate = [...controllerManagerArgs].reverse().find((a) => a.name === "allocate-node-cidrs");
    if (allocate?.value === "false") return;
    const nodeMask = nodeCidrMask(pod.family, controllerManagerArgs);
    if (nodeMask === undefined) return;
    const text = JSON.stringify(formatCidr(pod));
    const example = pod.family === 4 ? DEFAULT_POD_SUBNET : "fd00:10:244::/56";
    if (pod.prefix > nodeMask) {
        problems.add(
            "network.podSubnet",
            `${text} is smaller than one node's pod range: each node takes a /${nodeMask} of the pod subnet, ` +
                `so use a prefix of /${nodeMask} or shorter (e.g. ${JSON.stringify(example)})`,
        );
    } else if (nodeMask - pod.prefix > POD_SUBNET_NODE_MASK_MAX_DIFF) {
        problems.add(
            "network.podSubnet",
            `${text} is too large: kubeadm allows at most ${POD_SUBNET_NODE_MASK_MAX_DIFF} bits between the pod subnet and ` +
                `the per-node /${nodeMask}, so use a prefix of /${nodeMask - POD_SUBNET_NODE_MASK_MAX_DIFF} or longer (e.g. ${JSON.stringify(example)})`,
        );
    } else if (nodeMask - pod.prefix < 31 && 2 ** (nodeMask - pod.prefix) < hostCount) {
        problems.add(
            "network.podSubnet",
            `${text} has room for ${2 ** (nodeMask - pod.prefix)} node(s) (a /${nodeMask} each) but ${hostCount} hosts are configured: ` +
                `use a shorter prefix (e.g. ${JSON.stringify(example)})`,
        );
    }
}

interface ParsedApiServer {
    address?: string;
    addressIp?: IpAddress;
    port?: number;
    extraSans?: string[];
}

function parseApiServer(raw: unknown, problems: Problems): ParsedApiServer {
    const result: ParsedApiServer = {};
    if (isAbsent(raw)) return result;
    if (!isObject(raw)) {
        problems.add("apiServer", `must be an object with address, port and extraSans, got ${describe(raw)}`);
        return result;
    }
    checkKeys(raw, API_SERVER_KEYS, "apiServer", problems, API_SERVER_ALIASES);

    const address = raw["address"];
    if (!isAbsent(address)) {
        if (typeof address !== "string") {
            problems.add("apiServer.address", `must be an IP address or DNS name string, got ${describe(address)} (e.g. "k8s.example.com")`);
        } else {
            const a = classifyAddress(address, "apiServer.port");
            if (!a.ok) {
                problems.add("apiServer.address", `${show(address)} is not a valid API server address: ${a.reason}`);
            } else if (a.ip && unusableIp(a.ip)) {
                problems.add("apiServer.address", `${show(address)} is ${unusableIp(a.ip)}: give the load balancer, VIP or control-plane address clients use`);
            } else {
                result.address = a.value;
                if (a.ip) result.addressIp = a.ip;
            }
        }
    }

    if (!isAbsent(raw["port"])) {
        const p = parsePort(raw["port"], "apiServer.port", problems, DEFAULT_API_SERVER_PORT);
        if (p !== undefined) result.port = p;
    }

    const sans = raw["extraSans"];
    if (!isAbsent(sans)) {
        if (!Array.isArray(sans)) {
            const hint = typeof sans === "string" ? ` (write extraSans: [${sans}])` : "";
            problems.add("apiServer.extraSans", `must be a list of IP addresses and DNS names, got ${describe(sans)}${hint}`);
        } else {
            const out: string[] = [];
            let ok = true;
            sans.forEach((s, i) => {
                const path = item("apiServer.extraSans", i);
                if (typeof s !== "string") {
                    ok = false;
                    problems.add(path, `must be an IP address or DNS name string, got ${describe(s)}`);
                    return;
                }
                const a = classifyAddress(s, "apiServer.port", true);
                if (!a.ok) {
                    ok = false;
                    problems.add(
                        path,
                        `${show(s)} is not a valid subject alternative name: ${a.reason} (a wildcard such as "*.example.com" is allowed)`,
                    );
                    return;
                }
                if (!out.includes(a.value)) out.push(a.value);
            });
            if (ok) result.extraSans = out;
        }
    }
    return result;
}

const FLAG_NAME = /^[a-z0-9][a-z0-9-]*$/;

function flagNameProblem(name: string): string | undefined {
    if (FLAG_NAME.test(name)) return undefined;
    const bare = name.replace(/^-+/, "");
    const eq = bare.indexOf("=");
    if (eq > 0 && FLAG_NAME.test(bare.slice(0, eq))) {
        return `${show(name)} is not a valid flag name: give the name and the value separately (name ${JSON.stringify(bare.slice(0, eq))}, value ${JSON.stringify(bare.slice(eq + 1))})`;
    }
    if (bare !== name && FLAG_NAME.test(bare)) {
        return `${show(name)} is not a valid flag name: write \`${bare}\`, not \`${name}\``;
    }
    return `${show(name)} is not a valid flag name: use lowercase letters, digits and '-' without leading dashes (e.g. "audit-log-path")`;
}

function flagValue(v: unknown, path: string, problems: Problems): string | undefined {
    if (typeof v === "string") return v;
    if (typeof v === "boolean") return String(v);
    if (typeof v === "number" && Number.isFinite(v)) return String(v);
    if (isAbsent(v)) {
        problems.add(path, `has no value: give one (a string, number or boolean; write "" for an empty value)`);
    } else {
        problems.add(
            path,
            `must be a string, number or boolean, got ${describe(v)}: a flag that takes several values is written as one comma-separated string`,
        );
    }
    return undefined;
}

/** Either a map `{flag: value}` (sorted by name) or a kubeadm v1beta4 list `[{name, value}]` (order kept). */
function parseExtraArgs(raw: unknown, path: string, problems: Problems): ExtraArg[] | undefined {
    if (isAbsent(raw)) return [];
    const before = problems.count;
    const out: ExtraArg[] = [];
    if (isObject(raw)) {
        for (const name of Object.keys(raw).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) {
            const p = child(path, name);
            const why = flagNameProblem(name);
            if (why) problems.add(p, why);
            const value = flagValue(raw[name], p, problems);
            if (!why && value !== undefined) out.push({ name, value });
        }
    } else if (Array.isArray(raw)) {
        raw.forEach((entry, i) => {
            const p = item(path, i);
            if (!isObject(entry)) {
                problems.add(p, `each entry must be an object {name, value}, got ${describe(entry)} (e.g. {name: audit-log-path, value: /var/log/audit.log})`);
                return;
            }
            checkKeys(entry, ["name", "value"], p, problems);
            const name = entry["name"];
            let okName: string | undefined;
            if (isAbsent(name) || name === "") {
                problems.add(child(p, "name"), `is required: give the flag name without dashes (e.g. "audit-log-path")`);
            } else if (typeof name !== "string") {
                problems.add(child(p, "name"), `must be a string, got ${describe(name)}`);
            } else {
                const why = flagNameProblem(name);
                if (why) problems.add(child(p, "name"), why);
                else okName = name;
            }
            const value = flagValue(entry["value"], child(p, "value"), problems);
            if (okName !== undefined && value !== undefined) out.push({ name: okName, value });
        });
    } else {
        problems.add(
            path,
            `must be a map {flag: value} or a list [{name, value}], got ${describe(raw)} (e.g. {audit-log-path: /var/log/audit.log})`,
        );
        return undefined;
    }
    return problems.count === before ? out : undefined;
}

const IMAGE_PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;

/** Why `s` is not a registry `host[:port][/path]`, or undefined. */
function imageRepositoryProblem(s: string): string | undefined {
    const example = `e.g. "${DEFAULT_IMAGE_REPOSITORY}" or "registry.example.com:5000/k8s"`;
    const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(s);
    if (scheme) return `drop the scheme: write ${JSON.stringify(s.slice(scheme[0].length).replace(/\/+$/, ""))}`;
    if (s.endsWith("/")) return `remove the trailing '/': write ${JSON.stringify(s.replace(/\/+$/, ""))}`;
    const [hostPort = "", ...path] = s.split("/");
    const hp = /^(\[[0-9a-fA-F:.]+\]|[^:]+)(?::([0-9]+))?$/.exec(hostPort);
    const host = hp?.[1] ?? "";
    const port = hp?.[2];
    const hostOk =
        host === "localhost" ||
        (host.startsWith("[") ? parseIPv6(host.slice(1, -1)) !== undefined : parseIPv4(host) !== undefined || isDnsName(host));
    if (!hp || !hostOk) return `${show(hostPort)} is not a registry host: give a registry host[:port][/path] without a scheme (${example})`;
    if (port !== undefined && !(Number(port) >= 1 && Number(port) <= 65535 && !/^0/.test(port))) {
        return `the port ${show(port)} must be a number from 1 to 65535 (${example})`;
    }
    for (const c of path) {
        if (!IMAGE_PATH_COMPONENT.test(c)) {
            return `the path component ${show(c)} must be lowercase letters and digits separated by '.', '_' or '-' (${example})`;
        }
    }
    if (s.includes("@") || /:[^/]*$/.test(path.join("/"))) return `give only the repository, without image name, tag or digest (${example})`;
    return undefined;
}

function parseKubeadm(raw: unknown, problems: Problems): Partial<KubeadmSpec> {
    const result: Partial<KubeadmSpec> = {};
    let obj: Obj = {};
    if (!isAbsent(raw)) {
        if (!isObject(raw)) {
            problems.add("kubeadm", `must be an object with ${quoteList(KUBEADM_KEYS)}, got ${describe(raw)}`);
            return result;
        }
        obj = raw;
        checkKeys(obj, KUBEADM_KEYS, "kubeadm", problems, KUBEADM_ALIASES);
    }

    const repo = obj["imageRepository"];
    if (isAbsent(repo)) {
        result.imageRepository = DEFAULT_IMAGE_REPOSITORY;
    } else if (typeof repo !== "string" || repo.trim() === "") {
        problems.add("kubeadm.imageRepository", `must be a registry host[:port][/path], got ${describe(repo)} (e.g. "${DEFAULT_IMAGE_REPOSITORY}")`);
    } else {
        const why = imageRepositoryProblem(repo);
        if (why) problems.add("kubeadm.imageRepository", `${show(repo)} is not a valid image repository: ${why}`);
        else result.imageRepository = repo;
    }

    for (const setting of EXTRA_ARG_SETTINGS) {
        const args = parseExtraArgs(obj[setting], `kubeadm.${setting}`, problems);
        if (args) result[setting] = args;
    }

    const mode = obj["kubeProxyMode"];
    if (isAbsent(mode)) {
        result.proxyMode = DEFAULT_PROXY_MODE;
    } else if (typeof mode === "string" && (PROXY_MODES as readonly string[]).includes(mode)) {
        result.proxyMode = mode as ProxyMode;
    } else if (typeof mode === "string" && mode.toLowerCase() === "ipvs") {
        problems.add(
            "kubeadm.kubeProxyMode",
            `"ipvs" is deprecated since Kubernetes 1.35: use "nftables" (the successor, Linux 5.13+) or "iptables"`,
        );
    } else {
        problems.add("kubeadm.kubeProxyMode", `${show(mode)} is not a supported kube-proxy mode: use ${quoteList(PROXY_MODES)}`);
    }

    const kubelet = obj["kubelet"];
    if (isAbsent(kubelet)) {
        result.kubeletConfiguration = {};
    } else if (!isObject(kubelet) || (Object.getPrototypeOf(kubelet) !== Object.prototype && Object.getPrototypeOf(kubelet) !== null)) {
        problems.add(
            "kubeadm.kubelet",
            `must be an object of KubeletConfiguration fields, got ${describe(kubelet)} (e.g. {maxPods: 200, failSwapOn: false})`,
        );
    } else {
        const before = problems.count;
        for (const key of Object.keys(kubelet)) {
            const p = child("kubeadm.kubelet", key);
            const owned = KUBELET_OWNED[key];
            if (owned) {
                problems.add(p, `cannot be set here: ${owned}`);
            } else if (!/^[a-z][A-Za-z0-9]*$/.test(key)) {
                const camel = key.replace(/[-_]+([a-zA-Z0-9])/g, (_, c: string) => c.toUpperCase()).replace(/^[A-Z]/, (c) => c.toLowerCase());
                problems.add(
                    p,
                    `${show(key)} is not a KubeletConfiguration field name: fields are camelCase${/^[a-z][A-Za-z0-9]*$/.test(camel) ? ` (e.g. ${JSON.stringify(camel)})` : ""}`,
                );
            }
        }
        if (problems.count === before) result.kubeletConfiguration = deepCopy(kubelet) as Record<string, unknown>;
    }
    return result;
}

const PREFLIGHT_KEYS = ["ignore"] as const;

function parsePreflight(raw: unknown, problems: Problems): PreflightSpec {
    const result: PreflightSpec = { ignore: [] };
    if (isAbsent(raw)) return result;
    if (!isObject(raw)) {
        problems.add("preflight", `must be an object like {ignore: [cgroup]}, got ${describe(raw)}`);
        return result;
    }
    checkKeys(raw, PREFLIGHT_KEYS, "preflight", problems);
    const ignore = raw["ignore"];
    if (isAbsent(ignore)) return result;
    if (!Array.isArray(ignore)) {
        problems.add("preflight.ignore", `must be a list of check names (${quoteList(PREFLIGHT_CHECKS)}), got ${describe(ignore)}`);
        return result;
    }
    ignore.forEach((v, i) => {
        if (typeof v === "string" && (PREFLIGHT_CHECKS as readonly string[]).includes(v)) {
            if (!result.ignore.includes(v as PreflightCheck)) result.ignore.push(v as PreflightCheck);
        } else {
            const suggestion = typeof v === "string" ? closest(v, PREFLIGHT_CHECKS) : undefined;
            problems.add(item("preflight.ignore", i), `${show(v)} is not a preflight check: use ${suggestion ? `${JSON.stringify(suggestion)} or one of ` : ""}${quoteList(PREFLIGHT_CHECKS)}`);
        }
    });
    return result;
}

const PACKAGES_KEYS = ["localRepository"] as const;
const LOCAL_REPOSITORY_KEYS = ["apt", "rpm", "keyUrl"] as const;
const REPO_URL = /^(https?|file):\/\/[^\s'"\\]+$/;

function parsePackages(raw: unknown, problems: Problems): PackagesSpec {
    const result: PackagesSpec = {};
    if (isAbsent(raw)) return result;
    if (!isObject(raw)) {
        problems.add("packages", `must be an object like {localRepository: {apt: "http://10.0.0.5/debs ./"}}, got ${describe(raw)}`);
        return result;
    }
    checkKeys(raw, PACKAGES_KEYS, "packages", problems);
    const repo = raw["localRepository"];
    if (isAbsent(repo)) return result;
    const path = "packages.localRepository";
    if (!isObject(repo)) {
        problems.add(path, `must be an object with apt, rpm and/or keyUrl, got ${describe(repo)}`);
        return result;
    }
    checkKeys(repo, LOCAL_REPOSITORY_KEYS, path, problems);
    const local: LocalRepositorySpec = {};
    const apt = repo["apt"];
    if (!isAbsent(apt)) {
        const parts = typeof apt === "string" ? apt.trim().split(/\s+/) : [];
        if (parts.length < 2 || !REPO_URL.test(parts[0]) || parts.slice(1).some((p) => !/^[A-Za-z0-9._\/-]+$/.test(p))) {
            problems.add(child(path, "apt"), `${show(apt)} is not an apt source: write "URL SUITE [COMPONENT...]" without "deb" or options, e.g. "http://10.0.0.5/debs ./" (flat repository) or "http://mirror.example/k8s stable main"`);
        } else {
            local.apt = parts.join(" ");
        }
    }
    const rpm = repo["rpm"];
    if (!isAbsent(rpm)) {
        if (typeof rpm !== "string" || !REPO_URL.test(rpm.trim())) {
            problems.add(child(path, "rpm"), `${show(rpm)} is not a repository URL: use the dnf baseurl, e.g. "http://10.0.0.5/rpms/"`);
        } else {
            local.rpm = rpm.trim();
        }
    }
    const keyUrl = repo["keyUrl"];
    if (!isAbsent(keyUrl)) {
        if (typeof keyUrl !== "string" || !REPO_URL.test(keyUrl.trim())) {
            problems.add(child(path, "keyUrl"), `${show(keyUrl)} is not a URL: give the repository's signing key URL, e.g. "http://10.0.0.5/key.gpg", or leave it out to trust the repository unsigned`);
        } else {
            local.keyUrl = keyUrl.trim();
        }
    }
    if (isAbsent(apt) && isAbsent(rpm)) {
        problems.add(path, `needs apt and/or rpm: the repository that serves containerd.io, kubelet, kubeadm, kubectl and cri-tools for your hosts' package manager`);
    }
    if (local.apt || local.rpm) result.localRepository = local;
    return result;
}

const CHART_SOURCE_KEYS = ["repo", "path"] as const;

function parseCharts(raw: unknown, problems: Problems): Record<string, ChartSource> {
    const result: Record<string, ChartSource> = {};
    if (isAbsent(raw)) return result;
    const known = chartNames();
    const example = `e.g. {${known[0]}: {repo: "https://charts.example.com/${known[0]}"}} or {${known[0]}: {path: ./charts/${known[0]}.tgz}}`;
    if (!isObject(raw)) {
        problems.add("charts", `must be an object of chart sources by chart name, got ${describe(raw)} (${example})`);
        return result;
    }
    checkKeys(raw, known, "charts", problems);
    for (const name of known) {
        const v = raw[name];
        if (isAbsent(v)) continue;
        const path = child("charts", name);
        if (!isObject(v)) {
            problems.add(path, `must be {repo: URL} or {path: FILE}, got ${describe(v)} (${example})`);
            continue;
        }
        checkKeys(v, CHART_SOURCE_KEYS, path, problems);
        const repo = v["repo"];
        const file = v["path"];
        if (!isAbsent(repo) && !isAbsent(file)) {
            problems.add(path, `give either repo (a mirror of the chart repository) or path (a local chart archive), not both`);
        } else if (!isAbsent(repo)) {
            if (typeof repo !== "string" || !/^(https?|oci):\/\/[^\s'"\\]+$/.test(repo.trim())) {
                problems.add(child(path, "repo"), `${show(repo)} is not a chart repository URL: give the http(s):// URL of a repository serving the same chart and version (or oci://)`);
            } else {
                result[name] = { repo: repo.trim() };
            }
        } else if (!isAbsent(file)) {
            if (typeof file !== "string" || file.trim() === "") {
                problems.add(child(path, "path"), `must be the path of a chart archive (.tgz) or chart directory, got ${describe(file)}`);
            } else if (!fs.existsSync(file)) {
                problems.add(child(path, "path"), `${show(file)} does not exist (relative paths are relative to the Pulumi project directory): download the chart there, e.g. \`helm pull\` on a machine with access`);
            } else {
                result[name] = { path: file };
            }
        } else {
            problems.add(path, `needs repo or path (${example})`);
        }
    }
    return result;
}

function deepCopy(v: unknown): unknown {
    if (Array.isArray(v)) return v.map(deepCopy);
    if (isObject(v)) {
        const out: Obj = {};
        for (const [k, x] of Object.entries(v)) out[k] = deepCopy(x);
        return out;
    }
    return v;
}

// ---------------------------------------------------------------------------
// Entry point
// ---------------------------------------------------------------------------

/**
 * Validate and normalise the stack config; throws `ConfigError` listing every
 * problem. `projectName` becomes `spec.clusterName`. The SSH private key is
 * validated here but is not part of the returned spec (it is a secret).
 */
export function parseClusterConfig(raw: RawConfig, projectName: string): ClusterSpec {
    const problems = new Problems();

    const hosts = parseHosts(raw.hosts, problems);
    const ssh = parseSsh(raw.ssh, problems);
    const kubernetesVersion = parseKubernetesVersion(raw.kubernetesVersion, problems);
    const network = parseNetwork(raw.network, problems);
    const apiServer = parseApiServer(raw.apiServer, problems);
    const kubeadm = parseKubeadm(raw.kubeadm, problems);
    const preflight = parsePreflight(raw.preflight, problems);
    const packages = parsePackages(raw.packages, problems);
    const charts = parseCharts(raw.charts, problems);

    // Cross-section checks.
    if (network.podSubnet && !problems.hasUnder("kubeadm.controllerManagerExtraArgs")) {
        checkPodSubnetSize(network.podSubnet, kubeadm.controllerManagerExtraArgs ?? [], hosts.length, problems);
    }
    const subnets: [string, Cidr | undefined][] = [
        ["pod subnet", network.podSubnet],
        ["service subnet", network.serviceSubnet],
    ];
    const checkInCluster = (ip: IpAddress, path: string, what: string, fixSetting: string): void => {
        const family = network.podSubnet?.family ?? network.serviceSubnet?.family;
        if (family !== undefined && ip.family !== family) {
            problems.add(
                path,
                `${JSON.stringify(formatIp(ip))} is IPv${ip.family} but the cluster network is IPv${family}: ` +
                    `${fixSetting} (dual-stack is not supported)`,
            );
            return;
        }
        for (const [label, cidr] of subnets) {
            if (cidr && cidrContains(cidr, ip)) {
                const setting = label === "pod subnet" ? "network.podSubnet" : "network.serviceSubnet";
                problems.add(
                    path,
                    `${JSON.stringify(formatIp(ip))} is inside the ${label} ${formatCidr(cidr)}, so ${what} would collide with cluster ` +
                        `addresses: change ${setting} to a range your hosts do not use`,
                );
            }
        }
    };
    for (const host of hosts) {
        const path = item("hosts", host.index);
        if (host.internalIp) {
            checkInCluster(host.internalIp, child(path, "internalAddress"), "the node", "give an internalAddress of the same family as the pod and service subnets");
        } else if (host.addressIp) {
            checkInCluster(host.addressIp, child(path, "address"), "the node", "set internalAddress to an address of the same family as the pod and service subnets");
        }
    }
    if (apiServer.addressIp) {
        checkInCluster(apiServer.addressIp, "apiServer.address", "the API endpoint", "use an address of the same family as the pod and service subnets");
    }

    if (problems.count > 0) throw new ConfigError(problems.sorted());

    // No problems: every field below was set by the parsers (defaults included).
    const hostSpecs: HostSpec[] = hosts.map((h) => {
        const spec: HostSpec = {
            name: h.name as string,
            address: h.address as string,
            roles: h.roles as Role[],
            user: h.user ?? ssh.user,
            port: h.port ?? ssh.port,
        };
        if (h.internalAddress !== undefined) spec.internalAddress = h.internalAddress;
        return spec;
    });
    const firstControlPlane = hostSpecs.find((h) => h.roles.includes("control-plane")) as HostSpec;
    const networkSpec: NetworkSpec = {
        podSubnet: formatCidr(network.podSubnet as Cidr),
        serviceSubnet: formatCidr(network.serviceSubnet as Cidr),
        dnsDomain: network.dnsDomain as string,
        cni: network.cni as CniChoice,
    };
    const apiServerSpec: ApiServerSpec = {
        address: apiServer.address ?? firstControlPlane.address,
        port: apiServer.port ?? DEFAULT_API_SERVER_PORT,
        extraSans: apiServer.extraSans ?? [],
        explicitAddress: apiServer.address !== undefined,
    };
    const kubeadmSpec: KubeadmSpec = {
        imageRepository: kubeadm.imageRepository as string,
        apiServerExtraArgs: kubeadm.apiServerExtraArgs ?? [],
        controllerManagerExtraArgs: kubeadm.controllerManagerExtraArgs ?? [],
        schedulerExtraArgs: kubeadm.schedulerExtraArgs ?? [],
        kubeletExtraArgs: kubeadm.kubeletExtraArgs ?? [],
        proxyMode: kubeadm.proxyMode as ProxyMode,
        kubeletConfiguration: kubeadm.kubeletConfiguration ?? {},
    };
    return {
        clusterName: projectName,
        hosts: hostSpecs,
        kubernetesVersion,
        network: networkSpec,
        apiServer: apiServerSpec,
        kubeadm: kubeadmSpec,
        preflight,
        packages,
        charts,
    };
}

/** Re-exported for callers that validate addresses the same way. */
export {
    IpFamily, IpAddress, Cidr, parseIPv4, parseIPv6, parseIp, isIp, parseCidr, formatIp, formatCidr, hasHostBits, cidrNetwork, cidrContains, cidrsOverlap,
} from "./net";
