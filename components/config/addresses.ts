/** Node names, DNS names and host addresses as the config sections check them. */
import { IpAddress, parseIPv4, parseIPv6, formatIp } from "../net";

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
export function suggestNodeName(name: string): string {
    const s = name
        .toLowerCase()
        .replace(/[^a-z0-9]+/g, "-")
        .replace(/^-+|-+$/g, "")
        .slice(0, 63)
        .replace(/-+$/g, "");
    return s.length > 0 ? s : "cp-1";
}

export type Address = { ok: true; value: string; ip?: IpAddress } | { ok: false; reason: string };

/**
 * Classify a host address: an IP (normalised to its canonical text) or a DNS
 * name. On failure `reason` already says how to fix it.
 */
export function classifyAddress(raw: string, portSetting: string, allowWildcard = false): Address {
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
export function unusableIp(ip: IpAddress): string | undefined {
    if (ip.bytes.every((b) => b === 0)) return "the unspecified address";
    if (ip.family === 4 && (ip.bytes[0] ?? 0) >= 224 && (ip.bytes[0] ?? 0) <= 239) return "a multicast address";
    if (ip.family === 6 && ip.bytes[0] === 0xff) return "a multicast address";
    if (ip.family === 4 && ip.bytes.every((b) => b === 255)) return "the broadcast address";
    return undefined;
}

export function isLoopback(ip: IpAddress): boolean {
    if (ip.family === 4) return ip.bytes[0] === 127;
    return ip.bytes.slice(0, 15).every((b) => b === 0) && ip.bytes[15] === 1;
}

