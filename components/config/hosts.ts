/** The `hosts` section. */
import { Role, ROLES, Taint } from "../model";
import { IpAddress, parseIp, formatIp } from "../net";
import { Problems, isObject, isAbsent, child, item, show, describe, quoteList, closest, checkKeys, parsePort, parseUser } from "./problems";
import { isDnsLabel, suggestNodeName, classifyAddress, unusableIp, isLoopback } from "./addresses";
import { ParsedBastion, parseBastion, parseHostKey, privateKeyProblem } from "./ssh";

const HOST_KEYS = ["name", "address", "internalAddress", "roles", "user", "port", "privateKey", "bastion", "hostKey", "labels", "taints"] as const;
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
    key: "privateKey",
    sshKey: "privateKey",
    jumpHost: "bastion",
    jump: "bastion",
    proxy: "bastion",
    proxyJump: "bastion",
    hostPublicKey: "hostKey",
    knownHost: "hostKey",
    sshHostKey: "hostKey",
};

export interface ParsedHost {
    index: number;
    name?: string;
    address?: string;
    addressIp?: IpAddress;
    internalAddress?: string;
    internalIp?: IpAddress;
    roles?: Role[];
    user?: string;
    port?: number;
    labels?: Record<string, string>;
    taints?: Taint[];
    /** hosts[].privateKey is set (validated or reported; the value stays in the raw config). */
    hasKey?: boolean;
    /** hosts[].bastion: a bastion of its own, or false for "connect directly, whatever ssh.bastion says". */
    bastion?: ParsedBastion | false;
    hostKey?: string;
}

/** A Kubernetes qualified name (label and taint keys): optional DNS-subdomain prefix, then a name of at most 63 characters. */
const QUALIFIED_NAME = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
/** A label value: at most 63 characters, alphanumeric at both ends, '-', '_', '.' inside (or empty). */
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;
const TAINT_EFFECTS: readonly Taint["effect"][] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];

function keyProblem(key: string): string | undefined {
    if (!QUALIFIED_NAME.test(key) || key.length > 317) {
        return `${show(key)} is not a valid key: an optional DNS prefix and '/', then up to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit (e.g. "example.com/tier")`;
    }
    if (/^node-role\.kubernetes\.io\/(control-plane|worker)$/.test(key)) {
        return `${show(key)} is set by the program from the host's roles: remove it (roles: [control-plane] or [worker])`;
    }
    return undefined;
}

function parseLabels(raw: unknown, path: string, problems: Problems): Record<string, string> | undefined {
    if (!isObject(raw)) {
        problems.add(path, `must be a map of label keys to values, got ${describe(raw)} (e.g. {tier: web, example.com/zone: a})`);
        return undefined;
    }
    const out: Record<string, string> = {};
    let ok = true;
    for (const key of Object.keys(raw).sort()) {
        const p = child(path, key);
        const value = raw[key];
        const why = keyProblem(key);
        const text = typeof value === "number" || typeof value === "boolean" ? String(value) : value;
        if (why) {
            ok = false;
            problems.add(p, why);
        } else if (typeof text !== "string" || !LABEL_VALUE.test(text)) {
            ok = false;
            problems.add(p, `${show(value)} is not a valid label value: up to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit (or "")`);
        } else {
            out[key] = text;
        }
    }
    return ok ? out : undefined;
}

function parseTaints(raw: unknown, path: string, problems: Problems): Taint[] | undefined {
    if (!Array.isArray(raw)) {
        problems.add(path, `must be a list of taints, got ${describe(raw)} (e.g. [{key: dedicated, value: gpu, effect: NoSchedule}])`);
        return undefined;
    }
    const out: Taint[] = [];
    let ok = true;
    raw.forEach((t, i) => {
        const p = item(path, i);
        if (!isObject(t)) {
            ok = false;
            problems.add(p, `must be an object {key, value, effect}, got ${describe(t)}`);
            return;
        }
        checkKeys(t, ["key", "value", "effect"], p, problems);
        const key = t["key"];
        const value = isAbsent(t["value"]) ? undefined : typeof t["value"] === "number" || typeof t["value"] === "boolean" ? String(t["value"]) : t["value"];
        const effect = t["effect"];
        const why = typeof key === "string" ? keyProblem(key) : `must be a string, got ${describe(key)}`;
        if (why) {
            ok = false;
            problems.add(child(p, "key"), why);
        }
        if (value !== undefined && (typeof value !== "string" || !LABEL_VALUE.test(value))) {
            ok = false;
            problems.add(child(p, "value"), `${show(value)} is not a valid taint value: up to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit`);
        }
        if (typeof effect !== "string" || !(TAINT_EFFECTS as readonly string[]).includes(effect)) {
            ok = false;
            const guess = typeof effect === "string" ? closest(effect, TAINT_EFFECTS) : undefined;
            problems.add(child(p, "effect"), `${show(effect)} is not a taint effect: use ${quoteList(TAINT_EFFECTS)}${guess ? ` (did you mean ${JSON.stringify(guess)}?)` : ""}`);
        }
        if (!why && typeof key === "string" && out.some((x) => x.key === key && x.effect === effect)) {
            ok = false;
            problems.add(p, `repeats the taint ${key}:${String(effect)}: give each key and effect once`);
        }
        if (ok) out.push({ key: key as string, ...(value !== undefined ? { value: value as string } : {}), effect: effect as Taint["effect"] });
    });
    return ok ? out : undefined;
}

export function parseHosts(raw: unknown, problems: Problems): ParsedHost[] {
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

        // labels and taints (applied to the node, kept in step with the config)
        if (!isAbsent(h["labels"])) {
            const labels = parseLabels(h["labels"], child(path, "labels"), problems);
            if (labels) host.labels = labels;
        }
        if (!isAbsent(h["taints"])) {
            const taints = parseTaints(h["taints"], child(path, "taints"), problems);
            if (taints) host.taints = taints;
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

        // per-host key, bastion and pinned host key
        if (!isAbsent(h["privateKey"])) {
            host.hasKey = true;
            const why = privateKeyProblem(h["privateKey"], `${path}.privateKey`);
            if (why) problems.add(child(path, "privateKey"), why);
        }
        const bastion = h["bastion"];
        // (`pulumi config set --path 'hosts[1].bastion' false` stores the string "false")
        if (bastion === false || bastion === "false") {
            host.bastion = false;
        } else if (bastion === true) {
            problems.add(child(path, "bastion"), `true is not a bastion: give {address, user?, port?} for this host, or false to connect to it directly (ssh.bastion is the default)`);
        } else if (bastion === "none" || bastion === "direct") {
            problems.add(child(path, "bastion"), `${show(bastion)} is read as a host name: write bastion: false to connect to this host directly`);
        } else if (!isAbsent(bastion)) {
            const b = parseBastion(bastion, child(path, "bastion"), problems);
            if (b) host.bastion = b;
        }
        if (!isAbsent(h["hostKey"])) {
            const k = parseHostKey(h["hostKey"], child(path, "hostKey"), problems);
            if (k !== undefined) host.hostKey = k;
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

