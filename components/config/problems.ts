/** The problem list every config section reports into, and the small helpers they share. */
import * as pulumi from "@pulumi/pulumi";
import { isUserName } from "../model";

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
export class ConfigError extends pulumi.RunError {
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

/** Order in which sections are reported, whatever order they were checked in. */
const SECTION_ORDER = ["hosts", "ssh", "kubernetesVersion", "network", "apiServer", "kubeadm", "containerd", "preflight", "packages", "proxy", "offline", "charts", "addons", "users"];

export class Problems {
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

export type Obj = Record<string, unknown>;

export function isObject(v: unknown): v is Obj {
    return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** YAML `key:` with nothing after it gives null; treat it like an unset key. */
export function isAbsent(v: unknown): v is undefined | null {
    return v === undefined || v === null;
}

/** Config path of a child key, in the syntax `pulumi config set --path` accepts. */
export function child(path: string, key: string): string {
    return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

export function item(path: string, index: number): string {
    return `${path}[${index}]`;
}

/**
 * While a section that is stored as a Pulumi secret is parsed, no value is
 * quoted in a message: `show` and `describe` say what kind of value it is and
 * never what it is.
 */
let redacting = false;

/** Run `parse` with every value quoted by `show`/`describe` redacted. */
export function redacted<T>(parse: () => T): T {
    const before = redacting;
    redacting = true;
    try {
        return parse();
    } finally {
        redacting = before;
    }
}

/** A value quoted for a message; long strings are shortened. */
export function show(v: unknown): string {
    if (redacting && (typeof v === "string" || typeof v === "number" || typeof v === "boolean")) {
        return `a ${typeof v}${typeof v === "string" ? ` of ${v.length} characters` : ""} (not shown: it is stored as a secret)`;
    }
    if (typeof v === "string") {
        const s = v.length > 60 ? v.slice(0, 57) + "..." : v;
        return JSON.stringify(s);
    }
    if (typeof v === "number" || typeof v === "boolean") return String(v);
    return describe(v);
}

/** What kind of value this is, for "got ..." in messages. */
export function describe(v: unknown): string {
    if (v === null) return "null";
    if (Array.isArray(v)) return "a list";
    if (typeof v === "object") return "an object";
    if (redacting && (typeof v === "string" || typeof v === "number" || typeof v === "boolean")) return show(v);
    if (typeof v === "string") return `the string ${show(v)}`;
    if (typeof v === "number") return `the number ${v}`;
    if (typeof v === "boolean") return `the boolean ${v}`;
    return typeof v;
}

export function quoteList(values: readonly string[]): string {
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
export function checkKeys(
    obj: Obj,
    known: readonly string[],
    path: string,
    problems: Problems,
    aliases: Record<string, string> = {},
): void {
    for (const key of Object.keys(obj)) {
        if (known.includes(key)) continue;
        if (redacting) {
            problems.add(path, `has a setting that is not one of ${quoteList(known)} (its name is not shown: the section is stored as a secret): remove it`);
            continue;
        }
        // (own properties only: a key named "constructor" or "__proto__" is not an alias)
        const suggestion = (Object.prototype.hasOwnProperty.call(aliases, key) ? aliases[key] : undefined) ?? closest(key, known);
        const fix = suggestion
            ? `did you mean ${JSON.stringify(suggestion)}?`
            : `remove it; the known settings here are ${quoteList(known)}`;
        problems.add(child(path, key), `unknown setting ${JSON.stringify(key)}: ${fix}`);
    }
}

/** A TCP port given as a number (or a decimal string, as `pulumi config set --path` may store it). */
export function parsePort(v: unknown, path: string, problems: Problems, example: number): number | undefined {
    let n: number | undefined;
    if (typeof v === "number") n = v;
    else if (typeof v === "string" && /^[0-9]{1,5}$/.test(v.trim())) n = Number(v.trim());
    if (n !== undefined && Number.isInteger(n) && n >= 1 && n <= 65535) return n;
    problems.add(path, `${show(v)} is not a valid port: use a whole number from 1 to 65535 (e.g. ${example})`);
    return undefined;
}

export function parseUser(v: unknown, path: string, problems: Problems): string | undefined {
    if (typeof v === "string" && isUserName(v)) return v;
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

/** Own-property lookup in a table keyed by user input (never `Object.prototype`'s members). */
export function lookup<T>(table: Readonly<Record<string, T>>, key: string): T | undefined {
    return Object.prototype.hasOwnProperty.call(table, key) ? table[key] : undefined;
}

/**
 * Every string in the raw config that no shell variable, file or command line
 * can carry (a NUL byte), by config path. Secret sections are reported
 * without their values.
 */
export function checkNulBytes(v: unknown, path: string, problems: Problems): void {
    if (typeof v === "string") {
        if (v.includes("\0")) problems.add(path, `contains a NUL byte (\\0), which no file, shell variable or command can hold: remove it`);
    } else if (Array.isArray(v)) {
        v.forEach((x, i) => checkNulBytes(x, item(path, i), problems));
    } else if (isObject(v)) {
        for (const [k, x] of Object.entries(v)) {
            if (k.includes("\0")) problems.add(path, `has a key with a NUL byte (\\0): remove it`);
            // (in a secret section the path stops here: key names are not shown)
            else checkNulBytes(x, redacting ? path : child(path, k), problems);
        }
    }
}

export function deepCopy(v: unknown): unknown {
    if (Array.isArray(v)) return v.map(deepCopy);
    if (isObject(v)) {
        const out: Obj = {};
        for (const [k, x] of Object.entries(v)) out[k] = deepCopy(x);
        return out;
    }
    return v;
}

