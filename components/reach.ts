/**
 * Fail fast on hosts that cannot be reached. The command provider retries a
 * failed SSH dial with back-off (a dead host took minutes per step), so at
 * `pulumi up` the program first checks every host, in parallel, the way its
 * steps will reach it:
 *
 *   - directly: a TCP connection to the host's SSH port and its `SSH-` greeting;
 *   - through a bastion: an SSH session to the bastion (its pinned host key
 *     checked, signing in with the bastion's key or the agent), then a
 *     forwarded connection from the bastion to the host (what OpenSSH's
 *     ProxyJump and the provider's `proxy` do), then the host's greeting
 *     through it;
 *   - with a pinned host key (`hosts[].hostKey`): the SSH key exchange with
 *     the host, whose host key must be the pinned one.
 *
 * Any host that fails stops the run before anything is touched, with every
 * failing host named, which hop failed, and why. Not done at `pulumi
 * preview`: a preview (in CI, say) needs no host.
 *
 * What the pin protects: the provider itself checks the pinned key on every
 * step's connection (pulumi-command 1.2.1 `hostKey`: x/crypto/ssh
 * `FixedHostKey`), so no step runs on, and no secret on stdin goes to, a host
 * with another key. This check only makes a wrong key fail at once, with the
 * fingerprints, instead of in the first step's dial retries.
 */
import * as fs from "fs";
import * as net from "net";
import { Duplex } from "stream";
import * as pulumi from "@pulumi/pulumi";
import { Client, ClientChannel, ConnectConfig } from "ssh2";
import { hostKeyFingerprint } from "./config";
import { HostSpec } from "./model";

/** How long each hop may take to accept the connection and greet (and, for a bastion, to sign in). */
export const REACH_TIMEOUT_MS = 10_000;

/** Why one host is unreachable. */
export interface Unreachable {
    host: string;
    endpoint: string;
    reason: string;
}

/** Thrown with every unreachable host at once (a `RunError`: no stack trace). */
export class UnreachableHostsError extends pulumi.RunError {
    readonly hosts: Unreachable[];

    constructor(hosts: Unreachable[]) {
        super(
            [
                `${hosts.length} ${hosts.length === 1 ? "host is" : "hosts are"} not reachable over SSH from here (nothing was touched):`,
                ...hosts.map((h) => `  - ${h.host} (${h.endpoint}): ${h.reason}`),
            ].join("\n"),
        );
        this.name = "UnreachableHostsError";
        this.hosts = hosts;
        Object.setPrototypeOf(this, new.target.prototype);
    }
}

/** `ssh.useAgent` is set but there is no agent to sign with (a `RunError`). */
export class SshAgentError extends pulumi.RunError {
    constructor(message: string) {
        super(message);
        this.name = "SshAgentError";
        Object.setPrototypeOf(this, new.target.prototype);
    }
}

function hostPort(address: string, port: number): string {
    return `${address.includes(":") ? `[${address}]` : address}:${port}`;
}

function endpoint(host: HostSpec): string {
    const direct = hostPort(host.address, host.port);
    return host.bastion ? `${direct} via ${host.bastion.user}@${hostPort(host.bastion.address, host.bastion.port)}` : direct;
}

/** Why a TCP connect failed, in words (port for the hint). */
function socketError(e: NodeJS.ErrnoException, address: string, port: number): string {
    switch (e.code) {
        case "ECONNREFUSED":
            return `connection refused: nothing listens on port ${port} (is sshd running? is the port right?)`;
        case "EHOSTUNREACH":
            return "no route to host (is the address right? is the host up?)";
        case "ENETUNREACH":
            return "network unreachable from this machine";
        case "ENOTFOUND":
        case "EAI_AGAIN":
            return `the name ${address} does not resolve`;
        case "ETIMEDOUT":
            return `no answer within the connect timeout (host down, or a firewall dropping port ${port})`;
        default:
            return `${e.code ?? "error"}: ${e.message}`;
    }
}

/**
 * Wait for the `SSH-` greeting on `stream` (a TCP socket, or a channel a
 * bastion forwarded); resolves undefined when it came, else the reason.
 * Destroys the stream either way.
 */
function awaitGreeting(stream: Duplex, port: number, timeoutMs: number, connecting: () => boolean, onError: (e: NodeJS.ErrnoException) => string): Promise<string | undefined> {
    return new Promise((resolve) => {
        let settled = false;
        let greeting = "";
        const done = (reason: string | undefined) => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            stream.destroy();
            resolve(reason);
        };
        const timer = setTimeout(
            () =>
                done(
                    greeting === "" && !connecting()
                        ? `port ${port} accepted the connection but sent no SSH greeting within ${timeoutMs / 1000} s (is it sshd? is this machine refused by MaxStartups or a TCP wrapper?)`
                        : `no answer within ${timeoutMs / 1000} s (host down, wrong address, or a firewall dropping port ${port})`,
                ),
            timeoutMs,
        );
        stream.on("data", (d: Buffer) => {
            greeting += d.toString("latin1");
            if (greeting.startsWith("SSH-")) done(undefined);
            else if (greeting.length >= 4 || greeting.includes("\n")) {
                done(`port ${port} answers, but not with SSH (it said ${JSON.stringify(greeting.slice(0, 40))}): is the port right (ssh.port, hosts[].port)?`);
            }
        });
        stream.on("end", () => done(`port ${port} closed the connection without an SSH greeting (sshd refusing this machine: MaxStartups, TCP wrappers, a firewall?)`));
        stream.on("close", () => done(`port ${port} closed the connection without an SSH greeting`));
        stream.on("error", (e: NodeJS.ErrnoException) => done(onError(e)));
    });
}

/** Connect to the host's SSH port and wait for the `SSH-` greeting; resolves undefined when it came, else the reason. */
export function probeSsh(address: string, port: number, timeoutMs = REACH_TIMEOUT_MS): Promise<string | undefined> {
    const socket = net.connect({ host: address, port });
    return awaitGreeting(socket, port, timeoutMs, () => socket.connecting, (e) => socketError(e, address, port));
}

/** The ssh2 settings that make the server present, and accept only, the pinned host key. */
function pinning(pinned: string, seen: { key?: Buffer }): Partial<ConnectConfig> {
    const [type, b64] = pinned.split(" ");
    const want = Buffer.from(b64, "base64");
    return {
        // Ask for the pinned key's type, as the provider does (HostKeyAlgorithms = [type]).
        algorithms: { serverHostKey: [type as never] },
        hostVerifier: (key: Buffer) => {
            seen.key = key;
            return key.equals(want);
        },
    };
}

/** Why a pinned host key check failed, in words. */
function pinFailure(what: string, pinned: string, seen: { key?: Buffer }, err: Error & { level?: string }, setting: string): string {
    const type = pinned.split(" ")[0];
    if (seen.key && !seen.key.equals(Buffer.from(pinned.split(" ")[1], "base64"))) {
        const got = hostKeyFingerprint(`${type} ${seen.key.toString("base64")}`);
        return (
            `${what} presented the ${type} host key ${got}, not the pinned ${hostKeyFingerprint(pinned)} (${setting}): ` +
            `if it was reinstalled or re-keyed, check the new key out of band (\`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub\` on its console) and update ${setting}; ` +
            `otherwise something is intercepting the connection`
        );
    }
    if (/host key|no matching|handshake/i.test(err.message)) {
        return `${what} offers no ${type} host key, the type pinned in ${setting} (${err.message}): pin the key \`ssh-keyscan -t ed25519 <address>\` prints`;
    }
    return `${what}: ${err.message}`;
}

/**
 * SSH key exchange with the server on `sock` (undefined: dial it), checking
 * the pinned host key; ends the connection once the key is verified (no
 * sign-in). Resolves undefined when the key matched, else the reason.
 */
function checkHostKey(target: { address: string; port: number }, pinned: string, setting: string, sock: Duplex | undefined, timeoutMs: number): Promise<string | undefined> {
    return new Promise((resolve) => {
        const seen: { key?: Buffer } = {};
        const client = new Client();
        let settled = false;
        const done = (reason: string | undefined) => {
            if (settled) return;
            settled = true;
            client.end();
            sock?.destroy();
            resolve(reason);
        };
        client.on("handshake", () => done(undefined));
        client.on("error", (e: Error & { level?: string; code?: string }) => {
            if (e.level === "client-socket" && e.code) return done(socketError(e as NodeJS.ErrnoException, target.address, target.port));
            if (e.level === "client-timeout") return done(`no SSH key exchange within ${timeoutMs / 1000} s (host down, or a firewall dropping port ${target.port})`);
            done(pinFailure("the host", pinned, seen, e, setting));
        });
        client.on("close", () => done("the connection closed during the SSH key exchange"));
        client.connect({
            ...(sock ? { sock } : { host: target.address, port: target.port }),
            username: "kubeadm-pulumi-reachability-check",
            readyTimeout: timeoutMs,
            ...pinning(pinned, seen),
        });
    });
}

/** How to sign in to a bastion. */
export interface BastionAuth {
    privateKey?: string;
    /** The ssh-agent socket (SSH_AUTH_SOCK) when `ssh.useAgent`. */
    agent?: string;
}

/**
 * Sign in to the host's bastion and have it open a TCP connection to the
 * host's SSH port. Resolves the forwarded stream and the bastion session (end
 * it when done), or the reason it failed, naming the hop.
 */
function throughBastion(host: HostSpec, auth: BastionAuth, timeoutMs: number): Promise<{ stream: ClientChannel; client: Client } | { reason: string }> {
    const b = host.bastion!;
    const at = `bastion ${b.user}@${hostPort(b.address, b.port)}`;
    return new Promise((resolve) => {
        const seen: { key?: Buffer } = {};
        const client = new Client();
        let settled = false;
        const fail = (reason: string) => {
            if (settled) return;
            settled = true;
            client.end();
            resolve({ reason });
        };
        client.on("error", (e: Error & { level?: string; code?: string }) => {
            if (e.level === "client-socket" && e.code) return fail(`${at}: ${socketError(e as NodeJS.ErrnoException, b.address, b.port)}`);
            if (e.level === "client-timeout") return fail(`${at}: no SSH session within ${timeoutMs / 1000} s (down, or a firewall dropping port ${b.port})`);
            if (e.level === "client-authentication") {
                return fail(
                    `${at}: signing in failed (${auth.privateKey ? "the key was refused" : "the ssh-agent's keys were refused"}): ` +
                        `authorise the key for ${b.user} on the bastion, or set bastion.user / bastion.privateKey`,
                );
            }
            if (b.hostKey) return fail(`${at}: ${pinFailure("the bastion", b.hostKey, seen, e, "bastion.hostKey")}`);
            fail(`${at}: ${e.message}`);
        });
        // sshd can end the connection without an error the client sees: its PAM
        // account stage refusing the user (pam_nologin while the bastion boots, an
        // expired account, pam_access), or MaxStartups dropping us.
        client.on("close", () =>
            fail(`${at}: the bastion closed the connection before a session was ready (its sshd refused ${b.user}: see its auth log, e.g. /run/nologin, an expired account, AllowUsers)`),
        );
        client.on("ready", () => {
            // The bastion answers the channel only once its own TCP connect is done,
            // which for a host that drops packets is the kernel's timeout (minutes).
            const forwarding = setTimeout(
                () => fail(`the bastion (${at}) signed us in but got no connection to ${hostPort(host.address, host.port)} within ${timeoutMs / 1000} s (host down, wrong address as the bastion sees it, or a firewall dropping port ${host.port})`),
                timeoutMs,
            );
            client.forwardOut("127.0.0.1", 0, host.address, host.port, (err, stream) => {
                clearTimeout(forwarding);
                if (settled) return stream?.destroy();
                if (err) {
                    const m = err.message;
                    const why = /prohibited/i.test(m)
                        ? `it refuses to forward connections (sshd AllowTcpForwarding no, or a restricted key): allow TCP forwarding for ${b.user} there`
                        : /refused/i.test(m)
                          ? `connection refused (is sshd running on the host? is hosts[].port right?)`
                          : /resolve|no such host|name/i.test(m)
                            ? `the bastion cannot resolve ${host.address}: give an address the bastion knows`
                            : `${m} (is the host up? is the address right as the bastion sees it?)`;
                    return fail(`the bastion (${at}) signed us in but could not connect to ${hostPort(host.address, host.port)}: ${why}`);
                }
                settled = true;
                resolve({ stream, client });
            });
        });
        client.connect({
            host: b.address,
            port: b.port,
            username: b.user,
            ...(auth.privateKey !== undefined ? { privateKey: auth.privateKey } : {}),
            ...(auth.agent !== undefined ? { agent: auth.agent } : {}),
            readyTimeout: timeoutMs,
            ...(b.hostKey ? pinning(b.hostKey, seen) : {}),
        });
    });
}

/** How the check signs in to bastions, per host name (only hosts with a bastion need one). */
export type ReachAuth = Readonly<Record<string, BastionAuth>>;

/** Check one host the way its steps reach it; resolves undefined when it answered, else the reason. */
export async function probeHost(host: HostSpec, auth: BastionAuth = {}, timeoutMs = REACH_TIMEOUT_MS): Promise<string | undefined> {
    const hostKeySetting = "hosts[].hostKey";
    if (!host.bastion) {
        return host.hostKey ? checkHostKey(host, host.hostKey, hostKeySetting, undefined, timeoutMs) : probeSsh(host.address, host.port, timeoutMs);
    }
    const hop = await throughBastion(host, auth, timeoutMs);
    if ("reason" in hop) return hop.reason;
    try {
        const onHost = (r: string | undefined) => (r === undefined ? undefined : `through the bastion, the host: ${r}`);
        if (host.hostKey) return onHost(await checkHostKey(host, host.hostKey, hostKeySetting, hop.stream, timeoutMs));
        return onHost(await awaitGreeting(hop.stream, host.port, timeoutMs, () => false, (e) => e.message));
    } finally {
        hop.client.end();
    }
}

/** Why the ssh-agent cannot be used, or undefined. */
export function agentProblem(env: NodeJS.ProcessEnv = process.env): string | undefined {
    const sock = env.SSH_AUTH_SOCK;
    const fix = "start an agent and add your key (`eval \"$(ssh-agent)\"; ssh-add ~/.ssh/id_ed25519`), then run pulumi from that shell; or set ssh.privateKey instead";
    if (!sock) return `ssh.useAgent is true, but SSH_AUTH_SOCK is not set where pulumi runs, so no step could sign in: ${fix}`;
    if (!fs.existsSync(sock)) return `ssh.useAgent is true, but the agent socket SSH_AUTH_SOCK=${sock} does not exist (the agent has exited?): ${fix}`;
    return undefined;
}

/** Probe every host in parallel; reject with every unreachable one. */
export async function checkReachable(hosts: readonly HostSpec[], auth: ReachAuth = {}, timeoutMs = REACH_TIMEOUT_MS, env: NodeJS.ProcessEnv = process.env): Promise<void> {
    if (hosts.some((h) => h.useAgent)) {
        const why = agentProblem(env);
        if (why) throw new SshAgentError(why);
    }
    const results = await Promise.all(hosts.map(async (h) => ({ h, reason: await probeHost(h, auth[h.name], timeoutMs) })));
    const bad = results.filter((r) => r.reason !== undefined).map((r) => ({ host: r.h.name, endpoint: endpoint(r.h), reason: r.reason as string }));
    if (bad.length > 0) throw new UnreachableHostsError(bad);
}

/**
 * At `pulumi up`, an output that resolves once every host answered (rejects
 * otherwise); at preview, resolves at once. `keys` are the bastion sign-in
 * keys per host name (secrets: they stay in this process).
 */
export function hostsReachable(hosts: readonly HostSpec[], keys: (h: HostSpec) => pulumi.Output<string> | undefined): pulumi.Output<void> {
    if (pulumi.runtime.isDryRun()) return pulumi.output(undefined as void);
    const withBastion = hosts.filter((h) => h.bastion);
    const keyed = withBastion.map((h) => keys(h) ?? pulumi.output(undefined as string | undefined));
    return pulumi.all(keyed).apply(async (values) => {
        const auth: Record<string, BastionAuth> = {};
        withBastion.forEach((h, i) => {
            const privateKey = values[i];
            auth[h.name] = { ...(privateKey !== undefined ? { privateKey } : {}), ...(h.useAgent && process.env.SSH_AUTH_SOCK ? { agent: process.env.SSH_AUTH_SOCK } : {}) };
        });
        await checkReachable(hosts, auth);
    });
}

