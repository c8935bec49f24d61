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
 * Each section has its own file here, all reporting into one `Problems`
 * list (problems.ts). Pure apart from checking that a local chart path exists: no Pulumi calls, no other I/O, no dependencies beyond the
 * model and version pins. The small IPv4/IPv6 address and CIDR helpers at the
 * bottom are exported for the components that render addresses.
 */
import { AddonsSpec, ApiServerSpec, ClusterSpec, CniChoice, HostSpec, KubeadmSpec, NetworkSpec, ProxyMode, Role, isWorker, isControlPlane } from "../model";
import { IpAddress, Cidr, formatIp, formatCidr, cidrContains } from "../net";
import { Problems, child, item, isObject, checkNulBytes, redacted, show } from "./problems";
import { KUBERNETES_MINORS } from "../versions";
import { DEFAULT_SSH_USER, DEFAULT_SSH_PORT, DEFAULT_BASTION_PORT, PRIVATE_KEY_FIX, AGENT_FIX, ParsedBastion, hasPlainKey, parseSsh, privateKeyProblem } from "./ssh";
import { parseHosts } from "./hosts";
import { parseKubernetesVersion } from "./version";
import { DEFAULT_POD_SUBNET, DEFAULT_SERVICE_SUBNET, DEFAULT_DNS_DOMAIN, DEFAULT_CNI, parseNetwork, checkPodSubnetSize } from "./network";
import { DEFAULT_API_SERVER_PORT, parseApiServer } from "./apiServer";
import { DEFAULT_PROXY_MODE, parseKubeadm } from "./kubeadm";
import { parsePreflight } from "./preflight";
import { parsePackages } from "./packages";
import { parseCharts } from "./charts";
import { parseContainerd } from "./containerd";
import { parseProxy } from "./proxy";
import { DEFAULT_USER_ROLES, parseUsers } from "./users";
import { checkOfflineAgainstPackages, parseOffline } from "./offline";
import { ConfigError } from "./problems";
import { RawAddons, defaultDashboardHost, parseAddons } from "./addons";

export { ConfigError, ConfigProblem, editDistance, closest } from "./problems";
export { isDnsLabel, dnsNameProblem, isDnsName } from "./addresses";
export { DEFAULT_SSH_USER, DEFAULT_SSH_PORT, DEFAULT_BASTION_PORT, privateKeyProblem };
export { hostKeyFingerprint } from "./ssh";
export { DEFAULT_POD_SUBNET, DEFAULT_SERVICE_SUBNET, DEFAULT_DNS_DOMAIN, DEFAULT_CNI, DEFAULT_API_SERVER_PORT, DEFAULT_PROXY_MODE };

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
    containerd?: unknown;
    addons?: unknown;
    proxy?: unknown;
    users?: unknown;
    offline?: unknown;
}

/**
 * Every top-level key the program reads from the stack config, in the order
 * the entry point reads them (index.ts, and the offline plan's stack-file
 * reader). A key added to RawConfig and not here is a type error.
 */
export const CONFIG_KEYS = [
    "hosts", "ssh", "kubernetesVersion", "network", "apiServer", "kubeadm", "containerd", "preflight", "packages", "charts", "addons",
    "proxy", "users", "offline",
] as const satisfies readonly (keyof RawConfig)[];
const allKeysListed: Exclude<keyof RawConfig, (typeof CONFIG_KEYS)[number]> extends never ? true : never = true;
void allKeysListed;

/** How the raw values were read from the stack. */
export interface ParseOptions {
    /**
     * Top-level keys stored as Pulumi secrets (the entry point passes them;
     * absent in tests that build a spec directly). Their values are never
     * quoted in a message; only `ssh` (it holds the private key, which must be
     * secret) and `addons` (for `addons.dashboard.tls.key`) may be secret.
     */
    secretKeys?: readonly string[];
    /**
     * The values are the raw stack config strings (JSON text for objects and
     * lists, as Pulumi stores them), decoded here so that an invalid one is a
     * problem with its path like any other, never an SDK error quoting it.
     */
    encoded?: boolean;
}

/**
 * Sections the program accepts as secrets: they never reach a command text or
 * plain state. `hosts` because `pulumi config set --secret --path
 * 'hosts[0].privateKey'` marks its whole top-level key secret; `addons` for
 * addons.dashboard.tls.key.
 */
const SECRET_SECTIONS: readonly string[] = ["ssh", "hosts", "addons"];

const OBJECT_SECTIONS: readonly (keyof RawConfig)[] = ["hosts", "ssh", "network", "apiServer", "kubeadm", "preflight", "packages", "charts", "containerd", "addons", "proxy", "users", "offline"];

/** Decode encoded values; report secret sections that may not be secret. */
function decodeSections(raw: RawConfig, opts: ParseOptions, secret: ReadonlySet<string>, problems: Problems): RawConfig {
    for (const key of secret) {
        if (!SECRET_SECTIONS.includes(key) && (raw as Record<string, unknown>)[key] !== undefined) {
            problems.add(
                key,
                `is stored as a secret, but the program writes its values into the commands shown by pulumi preview and into plain stack state ` +
                    `(they are not secret to Kubernetes either): set it without --secret. Only private keys are kept secret (ssh and hosts, which hold SSH keys, and addons, for addons.dashboard.tls.key)`,
            );
        }
    }
    if (!opts.encoded) return raw;
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(raw)) {
        if (typeof value !== "string") {
            out[key] = value;
            continue;
        }
        try {
            out[key] = JSON.parse(value);
        } catch {
            if (OBJECT_SECTIONS.includes(key as keyof RawConfig)) {
                problems.add(
                    key,
                    `is not valid JSON (${secret.has(key) ? "its value is not shown: it is stored as a secret" : `it starts ${JSON.stringify(value.slice(0, 30))}`}): ` +
                        `set its fields with \`pulumi config set --path ${key}.<field> <value>\` or write it as YAML in Pulumi.<stack>.yaml` +
                        (key === "ssh" ? "; the private key goes in ssh.privateKey: `pulumi config set --secret --path ssh.privateKey < ~/.ssh/id_ed25519`" : ""),
                );
                out[key] = undefined;
            } else {
                out[key] = value;
            }
        }
    }
    return out as RawConfig;
}

/**
 * Warnings about a valid config: things that may be fine but deserve a look
 * (printed by the entry point with `pulumi.log.warn`).
 */
export function configWarnings(spec: ClusterSpec): string[] {
    const warnings: string[] = [];
    const minor = spec.kubernetesVersion.split(".").slice(0, 2).join(".");
    const latest = (KUBERNETES_MINORS as Record<string, { latestPatch: string } | undefined>)[minor]?.latestPatch;
    const patch = (v: string) => Number(v.split(".")[2]);
    if (latest && patch(spec.kubernetesVersion) > patch(latest)) {
        warnings.push(
            `kubernetesVersion ${spec.kubernetesVersion} is newer than the newest ${minor} patch this program knows (${latest}): ` +
                `if the package repository does not have it, the prepare step stops and lists the versions it offers`,
        );
    }
    for (const [i, u] of spec.users.entries()) {
        if (!(DEFAULT_USER_ROLES as readonly string[]).includes(u.role)) {
            warnings.push(
                `users[${i}].role ${JSON.stringify(u.role)} is not one of Kubernetes' default user roles (${DEFAULT_USER_ROLES.join(", ")}): ` +
                    `the binding is made, but it grants nothing until a ClusterRole of that name exists`,
            );
        }
    }
    return warnings;
}

// ---------------------------------------------------------------------------
// Entry point
// ---------------------------------------------------------------------------

/**
 * Validate and normalise the stack config; throws `ConfigError` listing every
 * problem. `projectName` becomes `spec.clusterName`. The SSH private key is
 * validated here but is not part of the returned spec (it is a secret).
 */
export function parseClusterConfig(raw: RawConfig, projectName: string, opts: ParseOptions = {}): ClusterSpec {
    const problems = new Problems();
    const secret = new Set(opts.secretKeys ?? []);
    const sections = decodeSections(raw, opts, secret, problems);
    // A section stored as a secret is parsed without quoting any of its values.
    // A section stored as a secret is parsed without quoting any of its
    // values; one that may not be secret (reported) is not parsed at all.
    const section = <T>(key: keyof RawConfig, parse: (v: unknown) => T): T =>
        !secret.has(key) ? parse(sections[key]) : SECRET_SECTIONS.includes(key) ? redacted(() => parse(sections[key])) : parse(undefined);
    for (const key of Object.keys(sections) as (keyof RawConfig)[]) {
        section(key, (v) => checkNulBytes(v, key, problems));
    }

    const hosts = section("hosts", (v) => parseHosts(v, problems));
    const ssh = section("ssh", (v) => parseSsh(v, problems));
    const kubernetesVersion = section("kubernetesVersion", (v) => parseKubernetesVersion(v, problems));
    const network = section("network", (v) => parseNetwork(v, problems));
    const apiServer = section("apiServer", (v) => parseApiServer(v, problems));
    const kubeadm = section("kubeadm", (v) => parseKubeadm(v, problems));
    const preflight = section("preflight", (v) => parsePreflight(v, problems));
    const packages = section("packages", (v) => parsePackages(v, problems));
    const charts = section("charts", (v) => parseCharts(v, problems));
    const containerd = section("containerd", (v) => parseContainerd(v, problems));
    const rawAddons = section("addons", (v) => parseAddons(v, problems));
    if (opts.secretKeys !== undefined && !secret.has("addons") && rawAddons.dashboard.tlsKeyGiven) {
        problems.add(
            "addons.dashboard.tls.key",
            `is stored in plain text in Pulumi.<stack>.yaml (it was set without --secret): set it again as a secret with ` +
                `\`pulumi config set --secret --path addons.dashboard.tls.key < dashboard.key\`, and remove the plain copy from git history if it was committed`,
        );
    }
    const proxy = section("proxy", (v) => parseProxy(v, problems));
    const users = section("users", (v) => parseUsers(v, problems));
    const offline = section("offline", (v) => parseOffline(v, problems));
    checkOfflineAgainstPackages(offline, packages as Record<string, unknown>, problems);
    // Every private key must be stored as a secret (`--secret`); a key in a
    // section that is not secret is in plain text in Pulumi.<stack>.yaml.
    if (opts.secretKeys !== undefined) {
        const plain = (key: string) =>
            `is stored in plain text in Pulumi.<stack>.yaml (it was set without --secret): set it again as a secret with ` +
            `\`pulumi config set --secret --path ${/[[\]]/.test(key) ? `'${key}'` : key} < ~/.ssh/id_ed25519\`, and remove the plain copy from git history if it was committed`;
        const rawSsh = sections.ssh;
        if (!secret.has("ssh") && hasPlainKey(rawSsh)) problems.add("ssh.privateKey", plain("ssh.privateKey"));
        if (!secret.has("ssh") && isObject(rawSsh) && hasPlainKey(rawSsh["bastion"])) problems.add("ssh.bastion.privateKey", plain("ssh.bastion.privateKey"));
        if (!secret.has("hosts") && Array.isArray(sections.hosts)) {
            sections.hosts.forEach((h: unknown, i: number) => {
                if (hasPlainKey(h)) problems.add(`hosts[${i}].privateKey`, plain(`hosts[${i}].privateKey`));
                if (isObject(h) && hasPlainKey(h["bastion"])) problems.add(`hosts[${i}].bastion.privateKey`, plain(`hosts[${i}].bastion.privateKey`));
            });
        }
    }
    // Every host needs a way to sign in: its own key, ssh.privateKey or the agent.
    if (!ssh.hasKey && !ssh.useAgent && (hosts.length === 0 || hosts.some((h) => !h.hasKey))) {
        const without = hosts.filter((h) => !h.hasKey).map((h) => `hosts[${h.index}]`);
        const some = hosts.some((h) => h.hasKey) ? ` (${without.join(", ")} ${without.length === 1 ? "has" : "have"} no privateKey of ${without.length === 1 ? "its" : "their"} own)` : "";
        problems.add("ssh.privateKey", `no SSH private key is set${some}: ${PRIVATE_KEY_FIX}, ${AGENT_FIX}`);
    }

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

    const resolve = () => resolveAddons(rawAddons, hosts, network.cni as CniChoice | undefined, projectName, problems);
    const addons = secret.has("addons") ? redacted(resolve) : resolve();

    if (problems.count > 0) throw new ConfigError(problems.sorted());

    // No problems: every field below was set by the parsers (defaults included).
    const hostSpecs: HostSpec[] = hosts.map((h) => {
        const spec: HostSpec = {
            name: h.name as string,
            address: h.address as string,
            roles: h.roles as Role[],
            user: h.user ?? ssh.user,
            port: h.port ?? ssh.port,
            labels: h.labels ?? {},
            taints: h.taints ?? [],
        };
        if (h.internalAddress !== undefined) spec.internalAddress = h.internalAddress;
        const bastion: ParsedBastion | undefined = h.bastion === false ? undefined : (h.bastion ?? ssh.bastion);
        if (bastion) {
            spec.bastion = { address: bastion.address, user: bastion.user ?? spec.user, port: bastion.port };
            if (bastion.hostKey !== undefined) spec.bastion.hostKey = bastion.hostKey;
        }
        if (h.hostKey !== undefined) spec.hostKey = h.hostKey;
        if (ssh.useAgent) spec.useAgent = true;
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
        kubeProxyConfiguration: kubeadm.kubeProxyConfiguration ?? {},
        ignorePreflightErrors: kubeadm.ignorePreflightErrors ?? [],
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
        containerd,
        charts,
        addons,
        users,
        ...(proxy ? { proxy } : {}),
        ...(offline ? { offline } : {}),
    };
}

/**
 * The add-ons with the defaults that depend on other sections: every add-on
 * is on by default, but off when `network.cni` is `none` (their pods could
 * not start until the user's own network runs); the ingress runs on every
 * worker (on the control planes when there is none); the dashboard needs the
 * ingress.
 */
function resolveAddons(raw: RawAddons, hosts: readonly { name?: string; roles?: Role[] }[], cni: CniChoice | undefined, projectName: string, problems: Problems): AddonsSpec {
    const noNetwork = cni === "none";
    const on = (path: string, enabled: boolean | undefined): boolean => {
        if (noNetwork && enabled === true) {
            problems.add(path, `needs a pod network, and network.cni is "none": install the add-on yourself once your network runs, or set network.cni`);
            return false;
        }
        return enabled ?? !noNetwork;
    };
    const ingressOn = on("addons.ingress.enabled", raw.ingress.enabled);
    let nodes: string[] = [];
    const names = hosts.map((h) => h.name).filter((n): n is string => typeof n === "string");
    if (raw.ingress.nodes) {
        raw.ingress.nodes.forEach((n, i) => {
            if (!names.includes(n)) problems.add(`addons.ingress.nodes[${i}]`, `${show(n)} is not a host: use a name from hosts[].name (${names.map((x) => JSON.stringify(x)).join(", ")})`);
        });
        nodes = [...new Set(raw.ingress.nodes)];
    } else {
        const roles = (h: { roles?: Role[] }) => ({ roles: h.roles ?? [] }) as Parameters<typeof isWorker>[0];
        const workers = hosts.filter((h) => isWorker(roles(h))).map((h) => h.name as string);
        nodes = workers.length > 0 ? workers : hosts.filter((h) => isControlPlane(roles(h))).map((h) => h.name as string);
    }
    let dashboardOn = on("addons.dashboard.enabled", raw.dashboard.enabled);
    if (dashboardOn && !ingressOn) {
        if (raw.dashboard.enabled === true) {
            problems.add("addons.dashboard.enabled", `the dashboard is published through the ingress, which is off: enable addons.ingress or set addons.dashboard.enabled false`);
        }
        dashboardOn = false;
    }
    const spec: AddonsSpec = {
        ingress: {
            enabled: ingressOn,
            controller: raw.ingress.controller,
            exposure: raw.ingress.exposure,
            nodes,
            httpPort: raw.ingress.httpPort,
            httpsPort: raw.ingress.httpsPort,
            gatewayApi: raw.ingress.gatewayApi,
            gatewayApiCrds: raw.ingress.gatewayApiCrds,
        },
        dashboard: {
            enabled: dashboardOn,
            host: raw.dashboard.host ?? defaultDashboardHost(projectName),
            access: raw.dashboard.access,
            ...(raw.dashboard.tlsCertificate ? { tlsCertificate: raw.dashboard.tlsCertificate } : {}),
        },
        metricsServer: { enabled: on("addons.metricsServer.enabled", raw.metricsServer.enabled) },
        smokeTest: { enabled: on("addons.smokeTest.enabled", raw.smokeTest.enabled) },
    };
    if (raw.imageRegistry) spec.imageRegistry = raw.imageRegistry;
    return spec;
}

/** The private keys of a config that parseClusterConfig accepted, as plain strings (wrap them in `pulumi.secret`). */
export interface SshKeys {
    /** ssh.privateKey */
    sshPrivateKey?: string;
    /** hosts[].privateKey by host name */
    hostPrivateKeys: Record<string, string>;
    /** By host name: the key of the host's bastion when the bastion has its own (hosts[].bastion.privateKey, else ssh.bastion.privateKey unless the host opted out). */
    bastionPrivateKeys: Record<string, string>;
}

/**
 * Pick the private keys out of the raw config (decoded as parseClusterConfig
 * decodes it with `encoded`). Only call it on a config that parsed: the
 * values were validated there.
 */
export function sshKeys(raw: RawConfig, opts: { encoded?: boolean } = {}): SshKeys {
    const decode = (v: unknown): unknown => (opts.encoded && typeof v === "string" ? JSON.parse(v) : v);
    const sshRaw = decode(raw.ssh);
    const hostsRaw = decode(raw.hosts);
    const keyOf = (v: unknown): string | undefined => (hasPlainKey(v) ? (v["privateKey"] as string) : undefined);
    const out: SshKeys = { hostPrivateKeys: {}, bastionPrivateKeys: {} };
    const sshKey = keyOf(sshRaw);
    if (sshKey !== undefined) out.sshPrivateKey = sshKey;
    const clusterBastionKey = isObject(sshRaw) ? keyOf(sshRaw["bastion"]) : undefined;
    for (const h of Array.isArray(hostsRaw) ? hostsRaw : []) {
        if (!isObject(h) || typeof h["name"] !== "string") continue;
        const own = keyOf(h);
        if (own !== undefined) out.hostPrivateKeys[h["name"]] = own;
        const b = h["bastion"];
        const bastionKey = b === false || b === "false" ? undefined : isObject(b) ? keyOf(b) : clusterBastionKey;
        if (bastionKey !== undefined) out.bastionPrivateKeys[h["name"]] = bastionKey;
    }
    return out;
}

/** Re-exported for callers that validate addresses the same way. */
export {
    IpFamily, IpAddress, Cidr, parseIPv4, parseIPv6, parseIp, isIp, parseCidr, formatIp, formatCidr, hasHostBits, cidrNetwork, cidrContains, cidrsOverlap,
} from "../net";

