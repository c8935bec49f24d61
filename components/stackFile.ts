/**
 * A stack's configuration read straight from `Pulumi.yaml` and
 * `Pulumi.<stack>.yaml`, without the Pulumi CLI and without decrypting
 * anything: for the offline plan (`npm run plan`, components/cli/plan.ts).
 *
 * It produces what the entry point (index.ts) hands the config parser: the
 * raw strings Pulumi would give the program (JSON text for objects and
 * lists) and the keys stored as secrets. A `secure:` value is never
 * decrypted. A private key (a `...privateKey` setting, the one kind of
 * secret the program wants) only connects, no command contains it: it
 * becomes a throw-away key made here, which passes the parser's key check
 * and is never shown. Any other secret value would change what runs, so it
 * is a problem with its path: the plan cannot be made without it.
 */
import * as crypto from "crypto";
import * as YAML from "yaml";
import { CONFIG_KEYS, RawConfig } from "./config";

/** What a secret value read from the stack file is replaced with (never its ciphertext). */
export const SECRET_PLACEHOLDER = "<secret: not decrypted by the plan>";

/** The stack config as the program would receive it. */
export interface StackConfig {
    /** Project name (`name:` in Pulumi.yaml): the config namespace and `spec.clusterName`. */
    project: string;
    /** Raw values, encoded as Pulumi hands them to the program (see index.ts). */
    raw: RawConfig;
    /** Top-level keys holding a `secure:` value. */
    secretKeys: string[];
    /** What the reader of the plan should know about how the config was read (no values). */
    notes: string[];
    /** Problems that stop the plan before the config parser (e.g. a whole section stored as one secret). */
    problems: { path: string; message: string }[];
}

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
    return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** YAML `key:` with nothing after it: unset. */
function isAbsent(v: unknown): boolean {
    return v === undefined || v === null;
}

/** Pulumi's encrypted value: `{secure: <ciphertext>}`. */
function isSecure(v: unknown): boolean {
    return isObject(v) && Object.keys(v).length === 1 && "secure" in v;
}

function containsSecure(v: unknown): boolean {
    if (isSecure(v)) return true;
    if (Array.isArray(v)) return v.some(containsSecure);
    if (isObject(v)) return Object.values(v).some(containsSecure);
    return false;
}

/** `v` with every `secure:` value replaced by `replace(path)`. */
function replaceSecure(v: unknown, path: string, replace: (path: string) => unknown): unknown {
    if (isSecure(v)) return replace(path);
    if (Array.isArray(v)) return v.map((x, i) => replaceSecure(x, `${path}[${i}]`, replace));
    if (isObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, replaceSecure(x, `${path}.${k}`, replace)]));
    return v;
}

let placeholderKey: string | undefined;

/**
 * A freshly generated ed25519 key standing in for the encrypted
 * `ssh.privateKey`: it passes the parser's key check, reaches no output
 * (no command text contains the key), and is not the user's key.
 */
function standInKey(): string {
    placeholderKey ??= crypto.generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }) as string;
    return placeholderKey;
}

/** How Pulumi hands a config value to the program: strings as they are, anything else as JSON. */
function encode(v: unknown): string {
    return typeof v === "string" ? v : JSON.stringify(v);
}

/**
 * Read the project file and a stack file (their texts). Values of the
 * project's own namespace only; a key absent from the stack takes the
 * project file's `config.<key>.default` (or plain value), as Pulumi does.
 */
export function readStackConfig(projectYaml: string, stackYaml: string, stackName: string): StackConfig {
    const project = YAML.parse(projectYaml) as Obj | null;
    const name = isObject(project) && typeof project["name"] === "string" ? project["name"] : undefined;
    if (!name) throw new Error("Pulumi.yaml has no project name (`name:`)");
    const stack = (YAML.parse(stackYaml) ?? {}) as unknown;
    if (!isObject(stack)) throw new Error(`Pulumi.${stackName}.yaml is not a YAML mapping`);
    const stackConfig = stack["config"] ?? {};
    if (!isObject(stackConfig)) throw new Error(`Pulumi.${stackName}.yaml: \`config\` is not a mapping`);

    const values = new Map<string, unknown>();
    const projectConfig = isObject(project) && isObject(project["config"]) ? project["config"] : {};
    for (const [k, v] of Object.entries(projectConfig)) {
        const key = k.startsWith(`${name}:`) ? k.slice(name.length + 1) : k.includes(":") ? undefined : k;
        if (key === undefined) continue;
        if (isObject(v) && !isSecure(v)) {
            if ("default" in v) values.set(key, v["default"]);
            else if ("value" in v) values.set(key, v["value"]);
        } else {
            values.set(key, v);
        }
    }
    for (const [k, v] of Object.entries(stackConfig)) {
        if (k.startsWith(`${name}:`)) values.set(k.slice(name.length + 1), v);
    }

    const raw: Record<string, unknown> = {};
    const secretKeys: string[] = [];
    const notes: string[] = [];
    const problems: StackConfig["problems"] = [];
    const standIns: string[] = [];
    const readable = (p: string) =>
        `is stored as a secret, so the plan cannot read it without decrypting it: set it in plain text ` +
        `(\`pulumi config set --path ${/[[\]]/.test(p) ? `'${p}'` : p} <value>\`); only private keys need to be secrets`;
    for (const key of CONFIG_KEYS) {
        let v = values.get(key);
        if (isAbsent(v)) continue;
        if (!containsSecure(v)) {
            raw[key] = encode(v);
            continue;
        }
        secretKeys.push(key);
        if (isSecure(v)) {
            // (`config set --secret ssh <json>` hides user and port too)
            problems.push({ path: key, message: `${readable(key)}${key === "ssh" ? " (`pulumi config set --secret --path ssh.privateKey < ~/.ssh/id_ed25519`)" : ""}` });
            continue;
        }
        // The dashboard's own TLS key goes only into a Kubernetes Secret, but
        // the config check wants it to match the certificate, which no
        // stand-in can: the plan leaves the pair out (nothing it shows uses them).
        const dash = isObject(v) && isObject(v["dashboard"]) ? v["dashboard"] : undefined;
        if (key === "addons" && dash && isObject(dash["tls"]) && isSecure(dash["tls"]["key"])) {
            const { tls: _left, ...rest } = dash;
            v = { ...(v as Obj), dashboard: rest };
            notes.push("addons.dashboard.tls.key is stored as a secret: the plan does not decrypt it, so it leaves the dashboard's certificate and key out " +
                "(pulumi up checks that they belong together; no command contains them).");
        }
        // A private key is used only to connect, never in a command: a stand-in
        // does. Any other secret value would change what runs: the plan asks for it.
        v = replaceSecure(v, key, (p) => {
            if (/(^|\.)privateKey$/.test(p)) {
                standIns.push(p);
                return standInKey();
            }
            problems.push({ path: p, message: readable(p) });
            return SECRET_PLACEHOLDER;
        });
        raw[key] = encode(v);
    }
    if (standIns.length > 0) {
        notes.push(`${standIns.join(", ")} ${standIns.length === 1 ? "is" : "are"} stored as a secret: the plan does not decrypt ${standIns.length === 1 ? "it" : "them"} (no step's command contains a key).`);
    }
    // The key is set after `pulumi stack init` (README quick start): a stack
    // file without any still has a plan; `pulumi up` asks for one. (A host's
    // own key or the ssh-agent, where a config offers them, count as keys.)
    const ssh = values.get("ssh");
    const hosts = values.get("hosts");
    const hostKeys = Array.isArray(hosts) && hosts.some((h) => isObject(h) && !isAbsent(h["privateKey"]));
    const agent = isObject(ssh) && (ssh["useAgent"] === true || ssh["useAgent"] === "true");
    if ((isAbsent(ssh) || (isObject(ssh) && !isSecure(ssh) && isAbsent(ssh["privateKey"]))) && !hostKeys && !agent) {
        notes.push(
            "ssh.privateKey is not set in this stack file yet: `pulumi up` refuses until it is " +
                "(`pulumi config set --secret --path ssh.privateKey < ~/.ssh/id_ed25519`); the plan does not need it.",
        );
        raw["ssh"] = encode({ ...(isObject(ssh) ? ssh : {}), privateKey: standInKey() });
        if (!secretKeys.includes("ssh")) secretKeys.push("ssh");
    }
    return { project: name, raw: raw as RawConfig, secretKeys, notes, problems };
}
