/** The `apiServer` section. */
import { IpAddress } from "../net";
import { Problems, isObject, isAbsent, item, show, describe, checkKeys, parsePort, lookup } from "./problems";
import { classifyAddress, unusableIp, isLoopback } from "./addresses";

/** API server port: kubeadm's default `localAPIEndpoint.bindPort` (`DefaultAPIBindPort`). */
export const DEFAULT_API_SERVER_PORT = 6443;

/** Ports the other control-plane components listen on (kubeadm's port list, kubernetes.io "Ports and Protocols"). */
const CONTROL_PLANE_PORT_USERS: Record<string, string> = {
    "2379": "etcd (client)", "2380": "etcd (peer)", "10250": "the kubelet", "10256": "kube-proxy (health)",
    "10257": "kube-controller-manager", "10259": "kube-scheduler",
};

const API_SERVER_KEYS = ["address", "port", "extraSans"] as const;
const API_SERVER_ALIASES: Record<string, string> = {
    endpoint: "address",
    controlPlaneEndpoint: "address",
    certSANs: "extraSans",
    certSans: "extraSans",
    sans: "extraSans",
};

export interface ParsedApiServer {
    address?: string;
    addressIp?: IpAddress;
    port?: number;
    extraSans?: string[];
}

export function parseApiServer(raw: unknown, problems: Problems): ParsedApiServer {
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
            } else if ((a.ip && isLoopback(a.ip)) || a.value === "localhost") {
                problems.add(
                    "apiServer.address",
                    `${show(address)} is a loopback address: every node would try to reach the API on itself. Give the load balancer, VIP or a control plane's LAN address`,
                );
            } else {
                result.address = a.value;
                if (a.ip) result.addressIp = a.ip;
            }
        }
    }

    if (!isAbsent(raw["port"])) {
        const p = parsePort(raw["port"], "apiServer.port", problems, DEFAULT_API_SERVER_PORT);
        const taken = p === undefined ? undefined : lookup(CONTROL_PLANE_PORT_USERS, String(p));
        if (taken) {
            problems.add("apiServer.port", `${p} is ${taken}'s port on every control plane: use another port (e.g. ${DEFAULT_API_SERVER_PORT} or 443)`);
        } else if (p !== undefined) {
            result.port = p;
        }
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

