/**
 * The `proxy` section: the HTTP(S) proxy the hosts' package managers,
 * prepare's downloads and containerd's image pulls go through.
 *
 * Credentials in a proxy URL are refused rather than kept secret: the URL
 * ends up in files every local user of a host can read (apt.conf.d,
 * dnf.conf, containerd's unit environment, which `systemctl show containerd`
 * prints) and in the prepare command that `pulumi preview` shows, so no
 * secret handling in the program could keep it secret. A proxy that admits
 * the hosts by address does not need them.
 */
import { ProxySpec } from "../model";
import { parseIp, parseCidr } from "../net";
import { Problems, isObject, isAbsent, child, item, show, describe, checkKeys } from "./problems";
import { isDnsName } from "./addresses";

const PROXY_KEYS = ["http", "https", "noProxy"] as const;
const EXAMPLE = `e.g. {http: "http://proxy.example:3128", https: "http://proxy.example:3128", noProxy: [".example.internal", "10.0.0.0/8"]}`;

/** Why `raw` is not a proxy URL the program writes into host files, or undefined. */
function proxyUrlProblem(raw: string): string | undefined {
    let url: URL;
    try {
        url = new URL(raw);
    } catch {
        return `${show(raw)} is not a URL: give the proxy as http://host:port (${EXAMPLE})`;
    }
    if (url.username || url.password) {
        // (the value is not quoted: it holds a password)
        return `has a user name or password in it (not shown), which the program refuses: the URL would be written in plain text into ` +
            `/etc/apt/apt.conf.d, /etc/dnf/dnf.conf and containerd's unit environment (which \`systemctl show containerd\` prints to every local user), ` +
            `and into the prepare command pulumi preview shows. Let the proxy admit the hosts by address instead, and give it as http://host:port`;
    }
    if (!/^https?:$/.test(url.protocol)) return `${show(raw)} is not an http:// or https:// URL: give the proxy as http://host:port`;
    if ((url.pathname !== "/" && url.pathname !== "") || url.search || url.hash) return `${show(raw)} has a path, query or fragment: give only http://host:port`;
    if (/["'\\%\s]/.test(raw)) return `${show(raw)} contains a character (quote, backslash, %, space) that the files it goes into cannot carry: give only http://host:port`;
    const host = url.hostname.replace(/^\[|\]$/g, "");
    if (parseIp(host) === undefined && !isDnsName(host)) return `${show(raw)} does not name a host: give http://host:port`;
    return undefined;
}

/** Why `s` is not a no-proxy entry, or undefined: a host name, `.domain` (and subdomains), an IP address or a CIDR. */
function noProxyProblem(s: string): string | undefined {
    if (parseIp(s) !== undefined) return undefined;
    if (s.includes("/")) return parseCidr(s) !== undefined ? undefined : `is not a valid CIDR (e.g. "10.0.0.0/8")`;
    const name = s.startsWith("*.") ? s.slice(2) : s.startsWith(".") ? s.slice(1) : s;
    if (isDnsName(name) || name === "localhost") return undefined;
    return `is not a host name, ".domain", IP address or CIDR (e.g. "registry.example.internal", ".example.internal", "10.0.0.5" or "10.0.0.0/8")`;
}

/** The proxy URL with a trailing "/" removed (apt, dnf and Go all accept `http://host:port`). */
function normalise(raw: string): string {
    return raw.replace(/\/$/, "");
}

export function parseProxy(raw: unknown, problems: Problems): ProxySpec | undefined {
    if (isAbsent(raw)) return undefined;
    if (!isObject(raw)) {
        problems.add("proxy", `must be an object with http, https and/or noProxy, got ${describe(raw)} (${EXAMPLE})`);
        return undefined;
    }
    checkKeys(raw, PROXY_KEYS, "proxy", problems, { httpProxy: "http", httpsProxy: "https", no_proxy: "noProxy", noproxy: "noProxy" });
    const before = problems.count;
    const result: ProxySpec = { noProxy: [] };
    for (const key of ["http", "https"] as const) {
        const v = raw[key];
        if (isAbsent(v)) continue;
        const path = child("proxy", key);
        if (typeof v !== "string") {
            problems.add(path, `must be the proxy's URL, got ${describe(v)} (${EXAMPLE})`);
            continue;
        }
        const why = proxyUrlProblem(v.trim());
        if (why) problems.add(path, why);
        else result[key] = normalise(v.trim());
    }
    if (isAbsent(raw["http"]) && isAbsent(raw["https"])) {
        problems.add("proxy", `needs http and/or https: the proxy for plain-HTTP and for HTTPS destinations (usually the same http://host:port), ${EXAMPLE}`);
    }
    const noProxy = raw["noProxy"];
    if (!isAbsent(noProxy)) {
        if (!Array.isArray(noProxy)) {
            problems.add("proxy.noProxy", `must be a list of host names, ".domain"s, IP addresses or CIDRs, got ${describe(noProxy)}`);
        } else {
            noProxy.forEach((e, i) => {
                const why = typeof e === "string" ? noProxyProblem(e.trim()) : "must be a string";
                if (why) problems.add(item("proxy.noProxy", i), `${show(e)} ${why}`);
                else if (!result.noProxy.includes((e as string).trim())) result.noProxy.push((e as string).trim());
            });
        }
    }
    return problems.count === before ? result : undefined;
}
