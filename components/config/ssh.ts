/** The `ssh` section (the private key is validated here, never quoted in a message). */
import * as crypto from "crypto";
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
