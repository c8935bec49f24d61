/**
 * The hosts' HTTP(S) proxy (`proxy` in the stack config): the no-proxy list
 * the program computes, the files prepare writes (apt's proxy configuration,
 * containerd's systemd drop-in), and which sources a host reaches through
 * the proxy (for preflight's reachability check).
 *
 * The no-proxy list always holds the cluster's own addresses: containerd's
 * environment is inherited by nothing else, but a registry or mirror on a
 * node, the API server, and in-cluster names must never go through an
 * outside proxy (kubeadm warns about the same for its own environment:
 * `kubeadm init` preflight "HTTPProxyCIDR").
 */
import { ClusterSpec, ProxySpec, nodeAddress } from "./model";
import { cidrContains, isIp, parseCidr, parseIp } from "./net";

/** Header of every file the program writes for the proxy (also how a script recognises its own file). */
export const PROXY_FILE_HEADER = "Managed by kubeadm-pulumi (proxy in the stack config): changes are overwritten by the next pulumi up";

/**
 * The whole no-proxy list: loopback, the pod and service subnets, every
 * node's addresses, the API address, `.svc` and `.<dnsDomain>`, then what
 * the user added. De-duplicated, in that order.
 */
export function noProxyList(spec: ClusterSpec): string[] {
    const ipv6 = parseCidr(spec.network.podSubnet)?.family === 6;
    const list = [
        "localhost", "127.0.0.1", ...(ipv6 ? ["::1"] : []),
        spec.network.podSubnet, spec.network.serviceSubnet,
        ...spec.hosts.flatMap((h) => [h.address, nodeAddress(h)]),
        spec.apiServer.address,
        ".svc", `.${spec.network.dnsDomain}`,
        ...(spec.proxy?.noProxy ?? []),
    ];
    return [...new Set(list)];
}

/** Does `host` (a name or IP) match the no-proxy list, the way Go's and curl's NO_PROXY do? */
export function bypassesProxy(host: string, noProxy: readonly string[]): boolean {
    const h = host.toLowerCase().replace(/^\[|\]$/g, "");
    return noProxy.some((entry) => {
        const e = entry.toLowerCase();
        if (e.includes("/")) return isIp(h) && cidrContains(e, h);
        if (isIp(e) || isIp(h)) return isIp(e) && isIp(h) && parseIp(e)!.bytes.join() === parseIp(h)!.bytes.join();
        const domain = e.replace(/^\*?\./, "");
        return h === domain || h.endsWith(`.${domain}`);
    });
}

/** The proxy a host uses for `url`, or "" when it goes direct (no proxy for its scheme, or the host is in the no-proxy list). */
export function proxyFor(url: string, proxy: ProxySpec | undefined, noProxy: readonly string[]): string {
    if (!proxy) return "";
    const u = new URL(url);
    const via = u.protocol === "https:" ? proxy.https : u.protocol === "http:" ? proxy.http : undefined;
    if (!via || bypassesProxy(u.hostname, noProxy)) return "";
    return via;
}

/**
 * `/etc/apt/apt.conf.d/90kubeadm-pulumi-proxy`: apt's proxy per scheme,
 * and `DIRECT` for each plain host of the user's no-proxy list (apt has no
 * CIDR or domain matching, only per-host overrides: apt.conf(5) `Acquire::http::Proxy::<host>`).
 */
export function renderAptProxyConf(proxy: ProxySpec): string {
    const lines = [`// ${PROXY_FILE_HEADER}`];
    const hosts = proxy.noProxy.filter((e) => !e.includes("/") && !e.startsWith(".") && !e.startsWith("*"));
    for (const scheme of ["http", "https"] as const) {
        const url = proxy[scheme];
        if (!url) continue;
        lines.push(`Acquire::${scheme}::Proxy "${url}/";`);
        for (const h of hosts) lines.push(`Acquire::${scheme}::Proxy::${h} "DIRECT";`);
    }
    return lines.join("\n") + "\n";
}

/** A systemd unit file or drop-in as sections of key/value lines, serialised in order. */
export type SystemdUnit = Record<string, [string, string][]>;

export function renderSystemdUnit(unit: SystemdUnit, header: string): string {
    const out = [`# ${header}`];
    for (const [section, entries] of Object.entries(unit)) {
        out.push(`[${section}]`);
        for (const [k, v] of entries) {
            // (values are validated URLs and no-proxy entries: no quote, backslash, % or newline to escape)
            if (/["\\%\n]/.test(v)) throw new Error(`renderSystemdUnit: ${k} value needs escaping: ${JSON.stringify(v)}`);
            // Environment= takes quoted VAR=value words (systemd.exec(5)); one per line here.
            out.push(k === "Environment" ? `${k}="${v}"` : `${k}=${v}`);
        }
    }
    return out.join("\n") + "\n";
}

/** `/etc/systemd/system/containerd.service.d/http-proxy.conf`: containerd's proxy environment, for its image pulls. */
export function renderContainerdProxyDropIn(proxy: ProxySpec, noProxy: readonly string[]): string {
    const env: [string, string][] = [];
    if (proxy.http) env.push(["Environment", `HTTP_PROXY=${proxy.http}`]);
    if (proxy.https) env.push(["Environment", `HTTPS_PROXY=${proxy.https}`]);
    env.push(["Environment", `NO_PROXY=${noProxy.join(",")}`]);
    return renderSystemdUnit({ Service: env }, PROXY_FILE_HEADER);
}
