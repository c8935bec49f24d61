/** IPv4 / IPv6 addresses and CIDRs, without dependencies. */

export type IpFamily = 4 | 6;

/** An IP address as its bytes (4 for IPv4, 16 for IPv6), network order. */
export interface IpAddress {
    readonly family: IpFamily;
    readonly bytes: readonly number[];
}

/** A CIDR as written: `bytes` may have host bits set (see `hasHostBits`, `cidrNetwork`). */
export interface Cidr {
    readonly family: IpFamily;
    readonly bytes: readonly number[];
    readonly prefix: number;
}

const DECIMAL = /^(0|[1-9][0-9]{0,2})$/;

/** Strict dotted quad: four decimal octets 0-255, no leading zeros (they would be read as octal by some tools). */
export function parseIPv4(text: string): IpAddress | undefined {
    const parts = text.split(".");
    if (parts.length !== 4) return undefined;
    const bytes: number[] = [];
    for (const part of parts) {
        if (!DECIMAL.test(part)) return undefined;
        const n = Number(part);
        if (n > 255) return undefined;
        bytes.push(n);
    }
    return { family: 4, bytes };
}

/** RFC 4291 text form: up to eight hex groups, one "::", optional trailing dotted quad. No zone index. */
export function parseIPv6(text: string): IpAddress | undefined {
    if (text.length < 2 || text.length > 45) return undefined;
    let head = text;
    let tail: readonly number[] = [];
    const lastColon = text.lastIndexOf(":");
    if (lastColon < 0) return undefined;
    if (text.includes(".", lastColon)) {
        const v4 = parseIPv4(text.slice(lastColon + 1));
        if (!v4) return undefined;
        tail = v4.bytes;
        head = text.slice(0, lastColon + 1);
        if (!head.endsWith("::")) head = head.slice(0, -1);
    }
    const groupsWanted = tail.length > 0 ? 6 : 8;
    const parseGroups = (s: string): number[] | undefined => {
        if (s === "") return [];
        const out: number[] = [];
        for (const g of s.split(":")) {
            if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
            out.push(parseInt(g, 16));
        }
        return out;
    };
    let groups: number[];
    const gap = head.indexOf("::");
    if (gap >= 0) {
        if (head.indexOf("::", gap + 1) >= 0) return undefined;
        const left = parseGroups(head.slice(0, gap));
        const right = parseGroups(head.slice(gap + 2));
        if (!left || !right) return undefined;
        const missing = groupsWanted - left.length - right.length;
        if (missing < 1) return undefined;
        groups = [...left, ...new Array<number>(missing).fill(0), ...right];
    } else {
        const all = parseGroups(head);
        if (!all || all.length !== groupsWanted) return undefined;
        groups = all;
    }
    const bytes: number[] = [];
    for (const g of groups) bytes.push(g >> 8, g & 0xff);
    bytes.push(...tail);
    return { family: 6, bytes };
}

/** IPv4 or IPv6 address, or undefined. */
export function parseIp(text: string): IpAddress | undefined {
    return text.includes(":") ? parseIPv6(text) : parseIPv4(text);
}

export function isIp(text: string): boolean {
    return parseIp(text) !== undefined;
}

/** "addr/prefix" with a decimal prefix (0-32 for IPv4, 0-128 for IPv6), or undefined. */
export function parseCidr(text: string): Cidr | undefined {
    const slash = text.indexOf("/");
    if (slash < 0 || slash !== text.lastIndexOf("/")) return undefined;
    const ip = parseIp(text.slice(0, slash));
    const prefixText = text.slice(slash + 1);
    if (!ip || !DECIMAL.test(prefixText)) return undefined;
    const prefix = Number(prefixText);
    if (prefix > ip.bytes.length * 8) return undefined;
    return { family: ip.family, bytes: ip.bytes, prefix };
}

/** Canonical text: dotted quad, or RFC 5952 (lowercase, longest run of zero groups as "::"). */
export function formatIp(ip: IpAddress): string {
    if (ip.family === 4) return ip.bytes.join(".");
    const groups: number[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(((ip.bytes[i] ?? 0) << 8) | (ip.bytes[i + 1] ?? 0));
    let bestStart = -1;
    let bestLength = 1; // a single zero group is not compressed (RFC 5952 4.2.2)
    for (let i = 0; i < 8; ) {
        if (groups[i] !== 0) {
            i++;
            continue;
        }
        let j = i;
        while (j < 8 && groups[j] === 0) j++;
        if (j - i > bestLength) {
            bestStart = i;
            bestLength = j - i;
        }
        i = j;
    }
    const hex = groups.map((g) => g.toString(16));
    if (bestStart < 0) return hex.join(":");
    return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLength).join(":")}`;
}

export function formatCidr(cidr: Cidr): string {
    return `${formatIp(cidr)}/${cidr.prefix}`;
}

function toCidr(value: string | Cidr | IpAddress): Cidr {
    if (typeof value !== "string") return "prefix" in value ? value : { ...value, prefix: value.bytes.length * 8 };
    const parsed = value.includes("/") ? parseCidr(value) : parseIp(value);
    if (!parsed) throw new TypeError(`${JSON.stringify(value)} is not an IP address or CIDR`);
    return toCidr(parsed);
}

/** True when the first `bits` bits of a and b are equal. */
function samePrefix(a: readonly number[], b: readonly number[], bits: number): boolean {
    const whole = Math.floor(bits / 8);
    for (let i = 0; i < whole; i++) if (a[i] !== b[i]) return false;
    const rest = bits % 8;
    if (rest === 0) return true;
    const mask = (0xff << (8 - rest)) & 0xff;
    return ((a[whole] ?? 0) & mask) === ((b[whole] ?? 0) & mask);
}

/** True when the CIDR's address has bits set beyond its prefix (e.g. 10.244.1.0/16). */
export function hasHostBits(cidr: Cidr | string): boolean {
    const c = toCidr(cidr);
    return !samePrefix(c.bytes, cidrNetwork(c).bytes, c.bytes.length * 8);
}

/** The CIDR with host bits cleared: 10.244.1.0/16 -> 10.244.0.0/16. */
export function cidrNetwork(cidr: Cidr | string): Cidr {
    const c = toCidr(cidr);
    const bytes = c.bytes.map((b, i) => {
        const bitsHere = Math.max(0, Math.min(8, c.prefix - i * 8));
        return b & ((0xff << (8 - bitsHere)) & 0xff);
    });
    return { family: c.family, bytes, prefix: c.prefix };
}

/** True when `inner` (an address or CIDR) lies wholly inside `outer`. Different families never contain each other. */
export function cidrContains(outer: Cidr | string, inner: Cidr | IpAddress | string): boolean {
    const o = toCidr(outer);
    const i = toCidr(inner);
    return o.family === i.family && i.prefix >= o.prefix && samePrefix(o.bytes, i.bytes, o.prefix);
}

/** True when the two ranges share at least one address. Different families never overlap. */
export function cidrsOverlap(a: Cidr | string, b: Cidr | string): boolean {
    const x = toCidr(a);
    const y = toCidr(b);
    return x.family === y.family && samePrefix(x.bytes, y.bytes, Math.min(x.prefix, y.prefix));
}
