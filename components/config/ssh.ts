/** The `ssh` section and the SSH settings hosts share with it: keys (validated here, never quoted in a message), bastions, pinned host keys. */
import * as crypto from "crypto";
import { Problems, Obj, isObject, isAbsent, describe, show, child, checkKeys, parsePort, parseUser } from "./problems";
import { classifyAddress, unusableIp } from "./addresses";

/** SSH user when neither `ssh.user` nor a host's `user` is set: the account cloud images and bare installs share. */
export const DEFAULT_SSH_USER = "root";
/** SSH port when neither `ssh.port` nor a host's `port` is set: the IANA-assigned SSH port (RFC 4253). */
export const DEFAULT_SSH_PORT = 22;
/** Port of a bastion whose `port` is not set: the SSH port, as OpenSSH's ProxyJump assumes. */
export const DEFAULT_BASTION_PORT = 22;

export const PRIVATE_KEY_FIX = "run `pulumi config set --secret --path ssh.privateKey < ~/.ssh/id_ed25519`";
export const AGENT_FIX = "or set `ssh.useAgent: true` to sign with your ssh-agent";

const SSH_KEYS = ["user", "port", "privateKey", "useAgent", "bastion"] as const;
const SSH_ALIASES: Record<string, string> = {
    key: "privateKey",
    privateKeyFile: "privateKey",
    username: "user",
    agent: "useAgent",
    sshAgent: "useAgent",
    agentSocketPath: "useAgent",
    jumpHost: "bastion",
    jump: "bastion",
    proxy: "bastion",
    proxyJump: "bastion",
};
const BASTION_KEYS = ["address", "user", "port", "privateKey", "hostKey"] as const;
const BASTION_ALIASES: Record<string, string> = {
    host: "address",
    ip: "address",
    username: "user",
    key: "privateKey",
    sshKey: "privateKey",
    hostPublicKey: "hostKey",
    knownHost: "hostKey",
};

/** A parsed bastion; `user` unset means "the user of the host reached through it". */
export interface ParsedBastion {
    address: string;
    user?: string;
    port: number;
    hostKey?: string;
    /** The config has its own privateKey (validated; the value stays in the raw config). */
    hasKey: boolean;
}

export interface ParsedSsh {
    user: string;
    port: number;
    useAgent: boolean;
    /** ssh.privateKey is set (validated or reported). */
    hasKey: boolean;
    bastion?: ParsedBastion;
}

export function parseSsh(raw: unknown, problems: Problems): ParsedSsh {
    const result: ParsedSsh = { user: DEFAULT_SSH_USER, port: DEFAULT_SSH_PORT, useAgent: false, hasKey: false };
    // (a missing key is reported by the caller, once it knows whether every host has its own or the agent is used)
    if (isAbsent(raw)) return result;
    if (!isObject(raw)) {
        problems.add(
            "ssh",
            `must be an object with user, port and privateKey, got ${describe(raw)}: set its fields, ` +
                `e.g. \`pulumi config set --path ssh.user ubuntu\` and ${PRIVATE_KEY_FIX.replace(/^run /, "")}`,
        );
        result.hasKey = true; // (not "missing": reported above)
        return result;
    }
    checkKeys(raw, SSH_KEYS, "ssh", problems, SSH_ALIASES);
    if (!isAbsent(raw["user"])) {
        const u = parseUser(raw["user"], "ssh.user", problems);
        if (u !== undefined) result.user = u;
    }
    if (!isAbsent(raw["port"])) {
        const p = parsePort(raw["port"], "ssh.port", problems, 22);
        if (p !== undefined) result.port = p;
    }
    if (!isAbsent(raw["useAgent"])) {
        const a = raw["useAgent"];
        // (`pulumi config set --path ssh.useAgent true` stores the string "true")
        if (typeof a === "boolean") result.useAgent = a;
        else if (a === "true" || a === "false") result.useAgent = a === "true";
        else {
            problems.add(
                "ssh.useAgent",
                `must be true or false, got ${describe(a)}: true signs with the ssh-agent whose socket is in SSH_AUTH_SOCK ` +
                    `where pulumi runs (the provider reads it; a socket path is not configurable here, it changes with every login)`,
            );
        }
    }
    if (!isAbsent(raw["privateKey"])) {
        result.hasKey = true;
        const keyProblem = privateKeyProblem(raw["privateKey"]);
        if (keyProblem) problems.add("ssh.privateKey", keyProblem);
    }
    if (!isAbsent(raw["bastion"])) {
        if (raw["bastion"] === false) {
            problems.add("ssh.bastion", `false is only meaningful on a host (hosts[].bastion: false opts one host out of ssh.bastion): remove ssh.bastion to connect directly`);
        } else {
            const b = parseBastion(raw["bastion"], "ssh.bastion", problems);
            if (b) result.bastion = b;
        }
    }
    return result;
}

/**
 * A bastion object `{address, user?, port?, privateKey?, hostKey?}` at `path`
 * (`ssh.bastion` or `hosts[i].bastion`); undefined when it has problems
 * (reported).
 */
export function parseBastion(raw: unknown, path: string, problems: Problems): ParsedBastion | undefined {
    const example = `e.g. {address: bastion.example.com, user: jump}`;
    if (!isObject(raw)) {
        const hint = typeof raw === "string" ? ` (write ${path}: {address: ${show(raw)}})` : "";
        problems.add(path, `must be an object with address and optionally user, port, privateKey, hostKey, got ${describe(raw)}${hint}: ${example}`);
        return undefined;
    }
    checkKeys(raw, BASTION_KEYS, path, problems, BASTION_ALIASES);
    const before = problems.count;
    const out: ParsedBastion = { address: "", port: DEFAULT_BASTION_PORT, hasKey: false };
    const address = raw["address"];
    if (isAbsent(address) || address === "") {
        problems.add(child(path, "address"), `is required: the IP address or DNS name of the jump host, as this machine reaches it (${example})`);
    } else if (typeof address !== "string") {
        problems.add(child(path, "address"), `must be a string, got ${describe(address)}: give the jump host's IP address or DNS name`);
    } else {
        const a = classifyAddress(address, child(path, "port"));
        if (!a.ok) problems.add(child(path, "address"), `${show(address)} is not a valid address: ${a.reason}`);
        else if (a.ip && unusableIp(a.ip)) problems.add(child(path, "address"), `${show(address)} is ${unusableIp(a.ip)}: give the jump host's real IP address or DNS name`);
        else out.address = a.value;
    }
    if (!isAbsent(raw["user"])) {
        const u = parseUser(raw["user"], child(path, "user"), problems);
        if (u !== undefined) out.user = u;
    }
    if (!isAbsent(raw["port"])) {
        const p = parsePort(raw["port"], child(path, "port"), problems, 22);
        if (p !== undefined) out.port = p;
    }
    if (!isAbsent(raw["privateKey"])) {
        out.hasKey = true;
        const why = privateKeyProblem(raw["privateKey"], `${path}.privateKey`);
        if (why) problems.add(child(path, "privateKey"), why);
    }
    if (!isAbsent(raw["hostKey"])) {
        const k = parseHostKey(raw["hostKey"], child(path, "hostKey"), problems, "the jump host");
        if (k !== undefined) out.hostKey = k;
    }
    return problems.count === before ? out : undefined;
}

/** Host key types pulumi-command 1.2.1 can pin (x/crypto/ssh `FixedHostKey`). */
const PINNABLE_HOST_KEY_TYPES = ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"];
const KNOWN_KEY_TYPE = /^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com|[a-z0-9-]+-cert-v01@openssh\.com)$/;

/**
 * A pinned SSH host key: one line as `ssh-keyscan` prints it (`host type
 * base64`), as in known_hosts (hashed host names too) or as in a
 * `.pub` file (`type base64 comment`). Returns it as `type base64` (the
 * form the command provider's `hostKey` and the reachability check take),
 * or undefined with a problem.
 */
export function parseHostKey(v: unknown, path: string, problems: Problems, whose = "the host"): string | undefined {
    const scan = `ssh-keyscan -t ed25519 <address>`;
    if (typeof v !== "string") {
        problems.add(path, `must be a string, got ${describe(v)}: paste the line \`${scan}\` prints for ${whose}`);
        return undefined;
    }
    const lines = v.split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
    if (lines.length !== 1) {
        problems.add(
            path,
            lines.length === 0
                ? `is empty: paste the line \`${scan}\` prints for ${whose}`
                : `holds ${lines.length} lines: give one key, the ed25519 one (\`${scan}\`)`,
        );
        return undefined;
    }
    const fields = lines[0].split(/\s+/);
    const at = fields.findIndex((f) => KNOWN_KEY_TYPE.test(f));
    if (at < 0 || at > 1 || at + 1 >= fields.length) {
        problems.add(path, `${show(v)} is not an SSH public host key line: paste what \`${scan}\` prints for ${whose} (e.g. "192.0.2.10 ssh-ed25519 AAAAC3Nza...")`);
        return undefined;
    }
    const type = fields[at];
    const b64 = fields[at + 1];
    const blob = /^[A-Za-z0-9+/]+={0,2}$/.test(b64) ? Buffer.from(b64, "base64") : Buffer.alloc(0);
    const innerLen = blob.length >= 4 ? blob.readUInt32BE(0) : -1;
    const inner = innerLen >= 0 && 4 + innerLen <= blob.length ? blob.toString("latin1", 4, 4 + innerLen) : undefined;
    if (inner !== type) {
        problems.add(path, `the ${type} key in it is damaged (its base64 does not hold a ${type} key): copy the whole line \`${scan}\` prints for ${whose}`);
        return undefined;
    }
    if (!PINNABLE_HOST_KEY_TYPES.includes(type)) {
        const why =
            type === "ssh-rsa"
                ? `an RSA host key cannot be pinned: the command provider (pulumi-command 1.2.1, golang.org/x/crypto/ssh) then offers only the SHA-1 "ssh-rsa" ` +
                  `signature, which OpenSSH 8.8 and later refuse, so every step would fail to connect`
                : type === "ssh-dss"
                  ? `a DSA host key cannot be pinned: OpenSSH dropped DSA, and the command provider would not accept it either`
                  : `${type} host keys cannot be pinned by the command provider`;
        problems.add(path, `${why}: pin ${whose}'s ed25519 (or ECDSA) key instead, \`${scan}\``);
        return undefined;
    }
    return `${type} ${b64}`;
}

/** SHA256 fingerprint of a `type base64` key, as `ssh-keygen -l` prints it (`SHA256:...`). */
export function hostKeyFingerprint(key: string): string {
    const b64 = key.split(" ")[1] ?? "";
    return `SHA256:${crypto.createHash("sha256").update(Buffer.from(b64, "base64")).digest("base64").replace(/=+$/, "")}`;
}

/** Whether a raw section value has a string `privateKey` (for the plain-text check). */
export function hasPlainKey(v: unknown): v is Obj {
    return isObject(v) && typeof v["privateKey"] === "string";
}

/**
 * Why `key` cannot be used as the SSH private key, or undefined when it looks
 * right. Messages never quote the key.
 */
export function privateKeyProblem(key: unknown, keyPath = "ssh.privateKey"): string | undefined {
    const arg = /[[\]]/.test(keyPath) ? `'${keyPath}'` : keyPath;
    const PRIVATE_KEY_FIX = `run \`pulumi config set --secret --path ${arg} < ~/.ssh/id_ed25519\``;
    if (isAbsent(key)) return `no SSH private key is set: ${PRIVATE_KEY_FIX}`;
    if (typeof key !== "string") return `must be the text of a private key, got ${isObject(key) || Array.isArray(key) ? describe(key) : typeof key}: ${PRIVATE_KEY_FIX}`;
    const text = key.trim();
    if (text.length === 0) return `is empty: ${PRIVATE_KEY_FIX}`;
    if (/^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-|sk-(ssh|ecdsa))/.test(text) || /-----BEGIN (SSH2 |RSA )?PUBLIC KEY-----/.test(text)) {
        return `is a public key: set the private key (the file without ".pub"): ${PRIVATE_KEY_FIX}`;
    }
    if (text.startsWith("PuTTY-User-Key-File")) {
        return `is a PuTTY key: convert it with \`puttygen key.ppk -O private-openssh -o id_key\`, then run \`pulumi config set --secret --path ${arg} < id_key\``;
    }
    const begin = /-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY-----/.exec(text);
    if (!begin) {
        if (!text.includes("\n") && /^(~|\.{0,2}\/|[A-Za-z]:\\)/.test(text)) {
            return `looks like a file path, but the value must be the key's contents: ${PRIVATE_KEY_FIX}`;
        }
        return `does not look like a private key (expected a "-----BEGIN ... PRIVATE KEY-----" block): ${PRIVATE_KEY_FIX}`;
    }
    const kind = begin[1] ?? "";
    const endMarker = `-----END ${kind}PRIVATE KEY-----`;
    const end = text.indexOf(endMarker, begin.index);
    if (end < 0) {
        return `is incomplete (no "${endMarker}" line; was it pasted on one line or cut short?): ${PRIVATE_KEY_FIX}`;
    }
    const body = text.slice(begin.index + begin[0].length, end);
    const passphrase =
        `is protected by a passphrase, which the program cannot type: use a key without one ` +
        `(remove it from a copy with \`ssh-keygen -p -N "" -f <copy>\`), then ${PRIVATE_KEY_FIX}`;
    if (kind === "ENCRYPTED " || /Proc-Type:\s*4,ENCRYPTED/.test(body)) return passphrase;
    const block = text.slice(begin.index, end + endMarker.length);
    if (kind === "OPENSSH ") {
        const key = parseOpenSshKey(body);
        if (key === "encrypted") return passphrase;
        if (typeof key === "string") return `is not a usable OpenSSH private key (${key}): ${PRIVATE_KEY_FIX}`;
        return undefined;
    }
    try {
        crypto.createPrivateKey({ key: block, format: "pem" });
    } catch {
        return `has PEM armour but no private key the program can read inside it (damaged, or not a key): ${PRIVATE_KEY_FIX}`;
    }
    return undefined;
}

/** Key types the command provider's SSH client signs with (golang.org/x/crypto/ssh). */
const OPENSSH_KEY_TYPES = ["ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-dss"];

/**
 * Parse the OpenSSH private key format (openssh PROTOCOL.key): the magic
 * "openssh-key-v1\0", cipher, KDF, KDF options, the number of keys, the
 * public keys, then the private section, whose two check integers must be
 * equal when it is not encrypted. Returns "encrypted", a reason it is not a
 * key, or the key type.
 */
function parseOpenSshKey(body: string): "encrypted" | string | { type: string } {
    const data = Buffer.from(body.replace(/\s+/g, ""), "base64");
    const magic = "openssh-key-v1\0";
    if (data.length < magic.length || data.toString("latin1", 0, magic.length) !== magic) return "its body does not start with the openssh-key-v1 header";
    let at = magic.length;
    const bytes = (): Buffer | undefined => {
        if (at + 4 > data.length) return undefined;
        const len = data.readUInt32BE(at);
        if (at + 4 + len > data.length) return undefined;
        const b = data.subarray(at + 4, at + 4 + len);
        at += 4 + len;
        return b;
    };
    const uint32 = (): number | undefined => {
        if (at + 4 > data.length) return undefined;
        const v = data.readUInt32BE(at);
        at += 4;
        return v;
    };
    const cipher = bytes()?.toString("latin1");
    const kdf = bytes()?.toString("latin1");
    const kdfOptions = bytes();
    const keys = uint32();
    if (cipher === undefined || kdf === undefined || kdfOptions === undefined || keys === undefined) return "it is cut short";
    if (cipher !== "none") return "encrypted";
    if (keys !== 1) return `it holds ${keys} keys, not one`;
    const publicKey = bytes();
    const privateSection = bytes();
    if (!publicKey || !privateSection || at !== data.length) return "it is cut short or has trailing data";
    if (privateSection.length < 8 || privateSection.readUInt32BE(0) !== privateSection.readUInt32BE(4)) return "its check integers differ";
    const typeLen = privateSection.length >= 12 ? privateSection.readUInt32BE(8) : -1;
    const type = typeLen >= 0 && 12 + typeLen <= privateSection.length ? privateSection.toString("latin1", 12, 12 + typeLen) : "";
    if (!OPENSSH_KEY_TYPES.includes(type)) return `its key type ${JSON.stringify(type.slice(0, 30))} is not one of ${OPENSSH_KEY_TYPES.join(", ")}`;
    return { type };
}
