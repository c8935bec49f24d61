/**
 * A host reached only through a jump host, on real hosts: bx-node refuses
 * every packet from this machine (a prohibit route back to it), bx-jump is a
 * plain Debian host with sshd. The program's own reachability check and
 * two of the program's own steps (scripts, preflight: their commands and
 * connections from a mock run of the real program) go through bx-jump for
 * real, dialled the way pulumi-command 1.2.1 dials a `proxy` connection
 * (remote/connection.go `Dial`: SSH to the proxy, a direct-tcpip channel
 * from it to the host, an SSH session over that channel), with ssh2 and
 * both pinned host keys checked, since the provider itself cannot be built
 * here (tests/engine/README.md).
 */
import * as fs from "fs";
import * as path from "path";
import { Client, ClientChannel, ConnectConfig } from "ssh2";
import { RawConfig, parseClusterConfig } from "../../components/config";
import { parseFacts } from "../../components/facts";
import { UnreachableHostsError, checkReachable, probeSsh } from "../../components/reach";
import { Run, rawConfig, reveal, runProgram } from "../harness";
import { tier } from "../tier";
import { Sandbox, SandboxHost, sandboxAvailable, startSandbox } from "./sandbox";

const sandbox = tier("sandbox", "tests/hosts/bastion.test.ts", sandboxAvailable());

/** A step's connection as the program builds it (secrets revealed). */
interface Conn {
    host: string; port: number; user: string; privateKey?: string; hostKey?: string;
    proxy?: { host: string; port: number; user: string; privateKey?: string; hostKey?: string };
}

/** ssh2 settings for one hop: sign in with the key, accept only the pinned host key (x/crypto FixedHostKey). */
function hop(c: { host: string; port: number; user: string; privateKey?: string; hostKey?: string }, seen: string[]): ConnectConfig {
    const pinned = c.hostKey ? Buffer.from(c.hostKey.split(" ")[1], "base64") : undefined;
    return {
        username: c.user,
        privateKey: c.privateKey,
        readyTimeout: 15000,
        ...(c.hostKey ? { algorithms: { serverHostKey: [c.hostKey.split(" ")[0] as never] } } : {}),
        hostVerifier: (key: Buffer) => {
            seen.push(`${c.host}:${c.port}`);
            return pinned ? key.equals(pinned) : true;
        },
    };
}

const ready = (client: Client, config: ConnectConfig) =>
    new Promise<Client>((resolve, reject) => {
        // (a server that closes before signing us in, e.g. PAM refusing the account, emits no error: only close)
        client.once("ready", () => resolve(client)).once("error", reject)
            .once("close", () => reject(new Error(`${config.username}@${config.host ?? "(through the bastion)"}: the connection closed before the session was ready`)));
        client.connect(config);
    });

/** Run `command` with `stdin` over `conn` as the provider would: through conn.proxy when set. */
async function runOver(conn: Conn, command: string, stdin?: string): Promise<{ code: number; stdout: string; stderr: string; verified: string[] }> {
    const verified: string[] = [];
    let proxy: Client | undefined;
    let sock: ClientChannel | undefined;
    if (conn.proxy) {
        proxy = await ready(new Client(), { host: conn.proxy.host, port: conn.proxy.port, ...hop(conn.proxy, verified) });
        sock = await new Promise<ClientChannel>((resolve, reject) =>
            proxy!.forwardOut("127.0.0.1", 0, conn.host, conn.port, (err, s) => (err ? reject(err) : resolve(s))));
    }
    const target = await ready(new Client(), { ...(sock ? { sock } : { host: conn.host, port: conn.port }), ...hop(conn, verified) });
    try {
        return await new Promise((resolve, reject) => {
            target.exec(command, (err, ch) => {
                if (err) return reject(err);
                let stdout = "";
                let stderr = "";
                let code = -1;
                ch.on("data", (d: Buffer) => (stdout += d.toString()));
                ch.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
                ch.on("exit", (c: number | null) => (code = c ?? -1));
                ch.on("close", () => resolve({ code, stdout, stderr, verified }));
                ch.end(stdin ?? "");
            });
        });
    } finally {
        target.end();
        proxy?.end();
    }
}

sandbox.describe("a host behind a jump host, on real hosts", () => {
    let sb: Sandbox;
    let jump: SandboxHost;
    let node: SandboxHost;
    const hostKeyOf = (h: SandboxHost) => fs.readFileSync(path.join(h.root, "etc/ssh/ssh_host_ed25519_key.pub"), "utf8").trim();

    beforeAll(async () => {
        sandbox.require();
        sb = await startSandbox(["bx-jump", "bx-node"]);
        [jump, node] = sb.hosts;
        // bx-node answers nobody but its neighbours: replies to this machine are refused.
        const r = await sb.ssh(node, "root", `ip route add prohibit ${sb.gateway}/32`, undefined, 10000);
        // (the route cuts the session that added it: the exit status may be lost)
        void r;
    }, 300000);

    afterAll(async () => {
        await sb?.stop();
    }, 60000);

    /** The program's config: bx-node behind bx-jump, both host keys pinned. */
    function config(user = "kube", o: { nodeKey?: string; jumpKey?: string } = {}): RawConfig {
        return rawConfig({
            hosts: [{
                name: node.name, address: node.address, roles: ["control-plane", "worker"],
                hostKey: o.nodeKey ?? hostKeyOf(node),
            }],
            ssh: { user, privateKey: sb.privateKey, bastion: { address: jump.address, user: "kube", hostKey: o.jumpKey ?? hostKeyOf(jump) } },
            // (sandbox hosts: the machine's cgroup v1, and maybe fewer CPUs or less memory than a control plane wants)
            preflight: { ignore: ["cgroup", "cpu", "memory", "disk"] },
        });
    }

    test("bx-node cannot be reached directly from here (so everything below really goes through bx-jump)", async () => {
        expect(await probeSsh(node.address, 22, 3000)).toMatch(/no answer|no route|refused|unreachable/);
        expect(await probeSsh(jump.address, 22, 3000)).toBeUndefined();
    });

    test("the reachability check passes through bx-jump, both pinned host keys checked", async () => {
        const spec = parseClusterConfig(config(), "bx");
        expect(spec.hosts[0].bastion).toMatchObject({ address: jump.address, user: "kube" });
        await expect(checkReachable(spec.hosts, { [node.name]: { privateKey: sb.privateKey } }, 10000)).resolves.toBeUndefined();
    });

    test("a wrong pin for bx-node: the check names the host hop behind the bastion and both fingerprints", async () => {
        const spec = parseClusterConfig(config("kube", { nodeKey: hostKeyOf(jump) }), "bx");
        const err = await checkReachable(spec.hosts, { [node.name]: { privateKey: sb.privateKey } }, 10000).catch((e) => e);
        expect(err).toBeInstanceOf(UnreachableHostsError);
        expect(err.message).toContain(`  - bx-node (${node.address}:22 via kube@${jump.address}:22): through the bastion, the host: the host presented the ssh-ed25519 host key SHA256:`);
    });

    test("a wrong pin for bx-jump: the bastion hop is named", async () => {
        const spec = parseClusterConfig(config("kube", { jumpKey: hostKeyOf(node) }), "bx");
        const err = await checkReachable(spec.hosts, { [node.name]: { privateKey: sb.privateKey } }, 10000).catch((e) => e);
        expect(err.message).toContain(`: bastion kube@${jump.address}:22: the bastion presented the ssh-ed25519 host key`);
    });

    test("the program's scripts and preflight steps run on bx-node through bx-jump, with the connection the program gives them", async () => {
        const run: Run = await runProgram(config());
        const scripts = reveal<{ create: string; stdin: string; connection: Conn }>(run.byName(`${node.name}-scripts`).inputs);
        expect(scripts.connection.proxy).toMatchObject({ host: jump.address, port: 22, user: "kube" });
        const installed = await runOver(scripts.connection, scripts.create, scripts.stdin);
        expect({ code: installed.code, err: installed.stderr.slice(-400) }).toMatchObject({ code: 0 });
        // both hops' host keys were checked against the pins
        expect(installed.verified).toEqual([`${jump.address}:22`, `${node.address}:22`]);

        const preflight = reveal<{ create: string; connection: Conn }>(run.byName(`${node.name}-preflight`).inputs);
        const r = await runOver(preflight.connection, preflight.create);
        expect({ code: r.code, err: r.stderr.slice(-600) }).toMatchObject({ code: 0 });
        const facts = parseFacts(node.name, r.stdout);
        expect(facts.node).toBe(node.name);
        expect(facts.os.id).toBe("debian");
    });

    test("a user without passwordless sudo, through bx-jump: the first step says so, with the sudoers line", async () => {
        const run: Run = await runProgram(config("nosudo"));
        const scripts = reveal<{ create: string; stdin: string; connection: Conn }>(run.byName(`${node.name}-scripts`).inputs);
        expect(scripts.connection.user).toBe("nosudo");
        const r = await runOver(scripts.connection, scripts.create, scripts.stdin);
        expect(r.code).toBe(1);
        expect(r.stderr).toContain("user nosudo cannot run sudo without a password on this host: add 'nosudo ALL=(ALL) NOPASSWD:ALL' to /etc/sudoers.d/nosudo");
    });
});
