/**
 * Fail fast on hosts that cannot be reached. The command provider retries a
 * failed SSH dial with back-off (a dead host took minutes per step), so at
 * `pulumi up` the program first opens a TCP connection to every host's SSH
 * port, in parallel, and waits for the SSH greeting. Any host that does not
 * answer stops the run before anything is touched, with every unreachable
 * host named and the reason. Not done at `pulumi preview`: a preview (in CI,
 * say) needs no host.
 */
import * as net from "net";
import * as pulumi from "@pulumi/pulumi";
import { HostSpec } from "./model";

/** How long a host may take to accept the connection and greet. */
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

function endpoint(host: HostSpec): string {
    return `${host.address.includes(":") ? `[${host.address}]` : host.address}:${host.port}`;
}

/** Connect to the host's SSH port and wait for the `SSH-` greeting; resolves undefined when it came, else the reason. */
export function probeSsh(address: string, port: number, timeoutMs = REACH_TIMEOUT_MS): Promise<string | undefined> {
    return new Promise((resolve) => {
        let settled = false;
        let greeting = "";
        const socket = net.connect({ host: address, port });
        const done = (reason: string | undefined) => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            socket.destroy();
            resolve(reason);
        };
        const timer = setTimeout(
            () =>
                done(
                    greeting === "" && !socket.connecting
                        ? `port ${port} accepted the connection but sent no SSH greeting within ${timeoutMs / 1000} s (is it sshd? is this machine refused by MaxStartups or a TCP wrapper?)`
                        : `no answer within ${timeoutMs / 1000} s (host down, wrong address, or a firewall dropping port ${port})`,
                ),
            timeoutMs,
        );
        socket.on("data", (d: Buffer) => {
            greeting += d.toString("latin1");
            if (greeting.startsWith("SSH-")) done(undefined);
            else if (greeting.length >= 4 || greeting.includes("\n")) {
                done(`port ${port} answers, but not with SSH (it said ${JSON.stringify(greeting.slice(0, 40))}): is the port right (ssh.port, hosts[].port)?`);
            }
        });
        socket.on("end", () => done(`port ${port} closed the connection without an SSH greeting (sshd refusing this machine: MaxStartups, TCP wrappers, a firewall?)`));
        socket.on("error", (e: NodeJS.ErrnoException) => {
            switch (e.code) {
                case "ECONNREFUSED":
                    return done(`connection refused: nothing listens on port ${port} (is sshd running? are ssh.port / hosts[].port right?)`);
                case "EHOSTUNREACH":
                    return done("no route to host (is the address right? is the host up?)");
                case "ENETUNREACH":
                    return done("network unreachable from this machine");
                case "ENOTFOUND":
                case "EAI_AGAIN":
                    return done(`the name ${address} does not resolve`);
                case "ETIMEDOUT":
                    return done(`no answer within the connect timeout (host down, or a firewall dropping port ${port})`);
                default:
                    return done(`${e.code ?? "error"}: ${e.message}`);
            }
        });
    });
}

/** Probe every host in parallel; reject with every unreachable one. */
export async function checkReachable(hosts: readonly HostSpec[], timeoutMs = REACH_TIMEOUT_MS): Promise<void> {
    const results = await Promise.all(hosts.map(async (h) => ({ h, reason: await probeSsh(h.address, h.port, timeoutMs) })));
    const bad = results.filter((r) => r.reason !== undefined).map((r) => ({ host: r.h.name, endpoint: endpoint(r.h), reason: r.reason as string }));
    if (bad.length > 0) throw new UnreachableHostsError(bad);
}

/** At `pulumi up`, an output that resolves once every host answered (rejects otherwise); at preview, resolves at once. */
export function hostsReachable(hosts: readonly HostSpec[]): pulumi.Output<void> {
    if (pulumi.runtime.isDryRun()) return pulumi.output(undefined as void);
    return pulumi.output(checkReachable(hosts));
}
