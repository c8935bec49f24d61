/** The `ssh` section (the private key is validated here, never quoted in a message). */
import { Problems, isObject, isAbsent, describe, checkKeys, parsePort, parseUser } from "./problems";

/** SSH user when neither `ssh.user` nor a host's `user` is set: the account cloud images and bare installs share. */
export const DEFAULT_SSH_USER = "root";
/** SSH port when neither `ssh.port` nor a host's `port` is set: the IANA-assigned SSH port (RFC 4253). */
export const DEFAULT_SSH_PORT = 22;

const PRIVATE_KEY_FIX = "run `pulumi config set --secret --path ssh.privateKey < ~/.ssh/id_ed25519`";

const SSH_KEYS = ["user", "port", "privateKey"] as const;
const SSH_ALIASES: Record<string, string> = { key: "privateKey", privateKeyFile: "privateKey", username: "user" };

export interface ParsedSsh {
    user: string;
    port: number;
}

export function parseSsh(raw: unknown, problems: Problems): ParsedSsh {
    const result: ParsedSsh = { user: DEFAULT_SSH_USER, port: DEFAULT_SSH_PORT };
    if (isAbsent(raw)) {
        problems.add("ssh.privateKey", `no SSH private key is set: ${PRIVATE_KEY_FIX}`);
        return result;
    }
    if (!isObject(raw)) {
        problems.add(
            "ssh",
            `must be an object with user, port and privateKey, got ${describe(raw)}: set its fields, ` +
                `e.g. \`pulumi config set --path ssh.user ubuntu\` and ${PRIVATE_KEY_FIX.replace(/^run /, "")}`,
        );
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
    const keyProblem = privateKeyProblem(raw["privateKey"]);
    if (keyProblem) problems.add("ssh.privateKey", keyProblem);
    return result;
}

/**
 * Why `key` cannot be used as the SSH private key, or undefined when it looks
 * right. Messages never quote the key.
 */
export function privateKeyProblem(key: unknown): string | undefined {
    if (isAbsent(key)) return `no SSH private key is set: ${PRIVATE_KEY_FIX}`;
    if (typeof key !== "string") return `must be the text of a private key, got ${isObject(key) || Array.isArray(key) ? describe(key) : typeof key}: ${PRIVATE_KEY_FIX}`;
    const text = key.trim();
    if (text.length === 0) return `is empty: ${PRIVATE_KEY_FIX}`;
    if (/^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-|sk-(ssh|ecdsa))/.test(text) || /-----BEGIN (SSH2 |RSA )?PUBLIC KEY-----/.test(text)) {
        return `is a public key: set the private key (the file without ".pub"): ${PRIVATE_KEY_FIX}`;
    }
    if (text.startsWith("PuTTY-User-Key-File")) {
        return `is a PuTTY key: convert it with \`puttygen key.ppk -O private-openssh -o id_key\`, then run \`pulumi config set --secret --path ssh.privateKey < id_key\``;
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
    if (kind === "OPENSSH " && openSshKeyIsEncrypted(body)) return passphrase;
    return undefined;
}

/** OpenSSH key format (PROTOCOL.key): "openssh-key-v1\0", then the cipher name; "none" means no passphrase. */
function openSshKeyIsEncrypted(body: string): boolean {
    const data = Buffer.from(body.replace(/\s+/g, ""), "base64");
    const magic = "openssh-key-v1\0";
    if (data.length < magic.length + 4 || data.toString("latin1", 0, magic.length) !== magic) return false;
    const len = data.readUInt32BE(magic.length);
    const start = magic.length + 4;
    if (start + len > data.length) return false;
    return data.toString("latin1", start, start + len) !== "none";
}

