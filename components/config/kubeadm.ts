/** The `kubeadm` section: image repository, extra flags, kube-proxy mode, kubelet configuration. */
import { ExtraArg, KubeadmSpec, PROXY_MODES, ProxyMode } from "../model";
import { parseIPv4, parseIPv6 } from "../net";
import { DEFAULT_IMAGE_REPOSITORY } from "../versions";
import { Obj, Problems, isObject, isAbsent, child, item, show, describe, quoteList, checkKeys, closest, deepCopy, lookup } from "./problems";
import { KUBELET_FIELDS, KUBE_PROXY_FIELDS, FieldKind } from "./component-fields";
import { isDnsName } from "./addresses";

/** kube-proxy mode: kube-proxy's own default on Linux (`mode: ""` means iptables). */
export const DEFAULT_PROXY_MODE: ProxyMode = "iptables";

const EXTRA_ARG_SETTINGS = [
    "apiServerExtraArgs",
    "controllerManagerExtraArgs",
    "schedulerExtraArgs",
    "kubeletExtraArgs",
] as const;
const KUBEADM_KEYS = ["imageRepository", ...EXTRA_ARG_SETTINGS, "kubeProxyMode", "kubelet", "kubeProxy", "ignorePreflightErrors"] as const;
const KUBEADM_ALIASES: Record<string, string> = {
    proxyMode: "kubeProxyMode",
    kubeletConfiguration: "kubelet",
};

/** KubeProxyConfiguration fields the program writes itself or derives. */
const KUBE_PROXY_OWNED: Record<string, string> = {
    kind: "the program writes the KubeProxyConfiguration header itself; give only its fields",
    apiVersion: "the program writes the KubeProxyConfiguration header itself; give only its fields",
    mode: "set `kubeadm.kubeProxyMode` instead",
    clusterCIDR: "kubeadm derives it from `network.podSubnet`; set that instead",
};

/** A component configuration passed through to kubeadm (kubelet, kube-proxy). */
interface ComponentConfigKind {
    kind: string;
    api: string;
    fields: Readonly<Record<string, FieldKind>>;
    owned: Readonly<Record<string, string>>;
    example: string;
    docs: string;
}

/** Check a map of component-configuration fields against the field table; the copy, or undefined when there were problems. */
function componentConfig(raw: unknown, path: string, problems: Problems, c: ComponentConfigKind): Record<string, unknown> | undefined {
    if (isAbsent(raw)) return {};
    if (!isObject(raw) || (Object.getPrototypeOf(raw) !== Object.prototype && Object.getPrototypeOf(raw) !== null)) {
        problems.add(path, `must be an object of ${c.kind} fields, got ${describe(raw)} (e.g. ${c.example})`);
        return undefined;
    }
    const before = problems.count;
    for (const key of Object.keys(raw)) {
        const p = child(path, key);
        const owned = lookup(c.owned, key);
        const kind = lookup(c.fields, key);
        if (owned) {
            problems.add(p, `cannot be set here: ${owned}`);
        } else if (!kind) {
            const camel = key.replace(/[-_]+([a-zA-Z0-9])/g, (_, x: string) => x.toUpperCase()).replace(/^[A-Z]/, (x) => x.toLowerCase());
            const guess = lookup(c.fields, camel) ? camel : closest(key, Object.keys(c.fields));
            problems.add(p, `${show(key)} is not a ${c.kind} field (${c.api})` + (guess ? `: did you mean ${JSON.stringify(guess)}?` : `: see ${c.docs}`));
        } else {
            const why = fieldValueProblem(kind, raw[key]);
            if (why) problems.add(p, why);
        }
    }
    return problems.count === before ? (deepCopy(raw) as Record<string, unknown>) : undefined;
}

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
    tlsCertFile: "the program installs a serving certificate signed by the cluster CA on every node and names it here; remove it",
    tlsPrivateKeyFile: "the program installs a serving certificate signed by the cluster CA on every node and names it here; remove it",
    serverTLSBootstrap: "the program issues the kubelet serving certificates itself (signed by the cluster CA), so no serving CSR waits for approval; remove it",
};

/** A Go duration as the kubelet reads it (`metav1.Duration`): "10s", "1m30s", "500ms". */
const GO_DURATION = /^-?([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$/;
const INT32 = { min: -(2 ** 31), max: 2 ** 31 - 1 };

/** Why `v` is not a value of a component-configuration field of `kind`, or undefined. */
function fieldValueProblem(kind: FieldKind, v: unknown): string | undefined {
    const got = `got ${describe(v)}`;
    switch (kind) {
        case "string":
            return typeof v === "string" ? undefined : `must be a string, ${got}`;
        case "bool":
            return typeof v === "boolean" ? undefined : `must be true or false (unquoted), ${got}`;
        case "int":
            return typeof v === "number" && Number.isInteger(v) && v >= INT32.min && v <= INT32.max
                ? undefined
                : `must be a whole number (unquoted), ${got}`;
        case "number":
            return typeof v === "number" && Number.isFinite(v) ? undefined : `must be a number (unquoted), ${got}`;
        case "duration":
            return typeof v === "string" && GO_DURATION.test(v) ? undefined : `must be a duration such as "10s", "1m30s" or "500ms", ${got}`;
        case "stringList":
            return Array.isArray(v) && v.every((x) => typeof x === "string") ? undefined : `must be a list of strings, ${got}`;
        case "intList":
            return Array.isArray(v) && v.every((x) => typeof x === "number" && Number.isInteger(x)) ? undefined : `must be a list of whole numbers, ${got}`;
        case "stringMap":
            return isObject(v) && Object.values(v).every((x) => typeof x === "string")
                ? undefined
                : `must be a map of strings (quote numbers, e.g. {memory.available: "100Mi"}), ${got}`;
        case "boolMap":
            return isObject(v) && Object.values(v).every((x) => typeof x === "boolean") ? undefined : `must be a map of true/false values, ${got}`;
        case "object":
            // nested structures: kubeadm's strict decoder checks them (the engine tier runs it on rendered configs)
            return isObject(v) || Array.isArray(v) ? undefined : `must be an object or a list, ${got}`;
    }
}

/**
 * Flags whose values are obviously checkable, per component (the flag's type
 * in the component's own flag set). Unknown flags pass: the component checks
 * them when it starts.
 */
type FlagKind = "bool" | "int" | "port" | "duration" | "ip" | "cidrMask";
const KNOWN_FLAGS: Record<(typeof EXTRA_ARG_SETTINGS)[number], Record<string, FlagKind>> = {
    apiServerExtraArgs: {
        "allow-privileged": "bool", "anonymous-auth": "bool", "profiling": "bool", "audit-log-maxage": "int", "audit-log-maxbackup": "int",
        "audit-log-maxsize": "int", "max-requests-inflight": "int", "max-mutating-requests-inflight": "int", "secure-port": "port",
        "bind-address": "ip", "advertise-address": "ip", "event-ttl": "duration", "request-timeout": "duration", "v": "int",
    },
    controllerManagerExtraArgs: {
        "allocate-node-cidrs": "bool", "profiling": "bool", "leader-elect": "bool", "node-cidr-mask-size": "cidrMask",
        "node-cidr-mask-size-ipv4": "cidrMask", "node-cidr-mask-size-ipv6": "cidrMask", "terminated-pod-gc-threshold": "int",
        "concurrent-deployment-syncs": "int", "concurrent-service-syncs": "int", "secure-port": "port", "bind-address": "ip",
        "node-monitor-grace-period": "duration", "node-monitor-period": "duration", "cluster-signing-duration": "duration", "v": "int",
    },
    schedulerExtraArgs: { "profiling": "bool", "leader-elect": "bool", "secure-port": "port", "bind-address": "ip", "v": "int" },
    kubeletExtraArgs: { "max-pods": "int", "v": "int", "node-ip": "ip", "fail-swap-on": "bool", "serialize-image-pulls": "bool" },
};

function flagValueProblem(kind: FlagKind, value: string): string | undefined {
    switch (kind) {
        case "bool":
            return /^(true|false)$/.test(value) ? undefined : `must be true or false, got ${show(value)}`;
        case "int":
            return /^-?[0-9]+$/.test(value) ? undefined : `must be a whole number, got ${show(value)}`;
        case "port":
            return /^[0-9]+$/.test(value) && Number(value) <= 65535 ? undefined : `must be a port from 0 to 65535, got ${show(value)}`;
        case "cidrMask":
            return /^[0-9]+$/.test(value) && Number(value) >= 1 && Number(value) <= 128 ? undefined : `must be a prefix length (e.g. 24), got ${show(value)}`;
        case "duration":
            return GO_DURATION.test(value) ? undefined : `must be a duration such as "5m" or "30s", got ${show(value)}`;
        case "ip":
            return parseIPv4(value) || parseIPv6(value) ? undefined : `must be an IP address, got ${show(value)}`;
    }
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

export function parseKubeadm(raw: unknown, problems: Problems): Partial<KubeadmSpec> {
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
        if (!args) continue;
        let ok = true;
        args.forEach((a) => {
            const kind = lookup(KNOWN_FLAGS[setting], a.name);
            const why = kind ? flagValueProblem(kind, a.value) : undefined;
            if (why) {
                ok = false;
                problems.add(child(`kubeadm.${setting}`, a.name), why);
            }
        });
        if (ok) result[setting] = args;
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

    const kubelet = componentConfig(obj["kubelet"], "kubeadm.kubelet", problems, {
        kind: "KubeletConfiguration", api: "kubelet.config.k8s.io/v1beta1", fields: KUBELET_FIELDS, owned: KUBELET_OWNED,
        example: "{maxPods: 200, failSwapOn: false}", docs: "https://kubernetes.io/docs/reference/config-api/kubelet-config.v1beta1/",
    });
    if (kubelet) result.kubeletConfiguration = kubelet;
    const kubeProxy = componentConfig(obj["kubeProxy"], "kubeadm.kubeProxy", problems, {
        kind: "KubeProxyConfiguration", api: "kubeproxy.config.k8s.io/v1alpha1", fields: KUBE_PROXY_FIELDS, owned: KUBE_PROXY_OWNED,
        example: "{conntrack: {maxPerCore: 0}}", docs: "https://kubernetes.io/docs/reference/config-api/kube-proxy-config.v1alpha1/",
    });
    if (kubeProxy) result.kubeProxyConfiguration = kubeProxy;

    const ignore = obj["ignorePreflightErrors"];
    if (isAbsent(ignore)) {
        result.ignorePreflightErrors = [];
    } else if (!Array.isArray(ignore)) {
        problems.add("kubeadm.ignorePreflightErrors", `must be a list of kubeadm preflight check names, got ${describe(ignore)} (e.g. [SystemVerification])`);
    } else {
        const out: string[] = [];
        ignore.forEach((v, i) => {
            if (typeof v !== "string" || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(v)) {
                problems.add(item("kubeadm.ignorePreflightErrors", i), `${show(v)} is not a kubeadm preflight check name (e.g. "SystemVerification", "NumCPU", "Swap", "Port-6443")`);
            } else if (v.toLowerCase() === "all") {
                problems.add(item("kubeadm.ignorePreflightErrors", i), `"all" would hide every problem kubeadm finds: name the checks to ignore (kubeadm prints each failed check's name in brackets, e.g. [ERROR SystemVerification])`);
            } else if (!out.includes(v)) {
                out.push(v);
            }
        });
        if (out.length === ignore.length || problems.count === 0) result.ignorePreflightErrors = out;
    }
    return result;
}

