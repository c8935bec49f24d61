/**
 * SSH the way people have it: bastions (per cluster and per host, or none
 * for one host), per-host keys, the ssh-agent, pinned host keys. The config
 * model, the connection every step gets, what a change of each setting does
 * to the steps (no spurious re-runs: pulumi-command#447), and the
 * reachability check against real SSH servers (ssh2's server on loopback:
 * a bastion that forwards, hosts with known host keys).
 */
import * as net from "net";
import { Server, utils } from "ssh2";
import { ConfigError, RawConfig, parseClusterConfig, sshKeys } from "../components/config";
import { HostSpec } from "../components/model";
import { SshAgentError, UnreachableHostsError, checkReachable, probeHost } from "../components/reach";
import { CommandCall, EngineState, Run, StateEntry, healthyFacts, isSecretValue, openSshPrivateKey, plainStrings, rawConfig, reveal, runProgram } from "./harness";

const KEY = openSshPrivateKey();
const OTHER_KEY = utils.generateKeyPairSync("ed25519").private;
const BASTION_KEY = utils.generateKeyPairSync("ed25519").private;

/** An OpenSSH public key line of `type` (the config check reads only the type inside the blob). */
function pubKey(type: string): string {
    const t = Buffer.from(type, "latin1");
    const len = Buffer.alloc(4);
    len.writeUInt32BE(t.length);
    return `${type} ${Buffer.concat([len, t, Buffer.alloc(36, 7)]).toString("base64")}`;
}

function parse(raw: RawConfig) {
    return parseClusterConfig(raw, "demo");
}

function problems(raw: RawConfig, opts?: Parameters<typeof parseClusterConfig>[2]): string {
    try {
        parseClusterConfig(raw, "demo", opts);
    } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as ConfigError).message;
    }
    throw new Error("expected a ConfigError");
}

const hosts3 = () => [
    { name: "cp-1", address: "192.0.2.10", roles: ["control-plane"] },
    { name: "worker-1", address: "192.0.2.11", roles: ["worker"] },
    { name: "worker-2", address: "192.0.2.12", roles: ["worker"] },
];

describe("config: bastion, per-host keys, agent, host keys", () => {
    test("ssh.bastion applies to every host; a host's own bastion replaces it; bastion: false opts a host out", () => {
        const hosts: Record<string, unknown>[] = hosts3();
        hosts[1] = { ...hosts[1], user: "admin", bastion: { address: "jump-b.example.com", port: 2222 } };
        hosts[2] = { ...hosts[2], bastion: false };
        const spec = parse({ hosts, ssh: { user: "ubuntu", privateKey: KEY, bastion: { address: "192.0.2.1", user: "jump" } } });
        const [cp, w1, w2] = spec.hosts;
        expect(cp.bastion).toEqual({ address: "192.0.2.1", user: "jump", port: 22 });
        // a host's bastion user defaults to the host's own user
        expect(w1.bastion).toEqual({ address: "jump-b.example.com", user: "admin", port: 2222 });
        expect(w2.bastion).toBeUndefined();
        expect("useAgent" in cp).toBe(false);
    });

    test("bastion: \"false\" (as `pulumi config set --path` stores it) also opts out; useAgent \"true\" is true", () => {
        const hosts: Record<string, unknown>[] = hosts3();
        hosts[0] = { ...hosts[0], bastion: "false" };
        const spec = parse({ hosts, ssh: { useAgent: "true", bastion: { address: "192.0.2.1" } } });
        expect(spec.hosts[0].bastion).toBeUndefined();
        expect(spec.hosts[1].bastion).toEqual({ address: "192.0.2.1", user: "root", port: 22 });
        expect(spec.hosts.every((h) => h.useAgent === true)).toBe(true);
    });

    test("hostKey: an ssh-keyscan line, a known_hosts line or a .pub line become `type base64`", () => {
        const key = pubKey("ssh-ed25519");
        const ecdsa = pubKey("ecdsa-sha2-nistp256");
        const hosts: Record<string, unknown>[] = hosts3();
        hosts[0] = { ...hosts[0], hostKey: `192.0.2.10 ${key}\n` };
        hosts[1] = { ...hosts[1], hostKey: `|1|abc=|def= ${ecdsa}` };
        hosts[2] = { ...hosts[2], hostKey: `${key} root@worker-2` };
        const spec = parse({ hosts, ssh: { privateKey: KEY, bastion: { address: "192.0.2.1", hostKey: `[192.0.2.1]:22 ${key}` } } });
        expect(spec.hosts.map((h) => h.hostKey)).toEqual([key, ecdsa, key]);
        expect(spec.hosts[0].bastion?.hostKey).toBe(key);
    });

    test("with ssh.useAgent no private key is needed; without it every host needs one", () => {
        expect(() => parse({ hosts: hosts3(), ssh: { useAgent: true } })).not.toThrow();
        const hosts = hosts3().map((h) => ({ ...h, privateKey: KEY }));
        expect(() => parse({ hosts, ssh: { user: "ubuntu" } })).not.toThrow();
        expect(problems({ hosts: hosts3(), ssh: { useAgent: false } })).toContain("  - ssh.privateKey: no SSH private key is set");
    });

    test("sshKeys: per-host keys, and each host's bastion key (its own bastion's, else ssh.bastion's, none when opted out)", () => {
        const hosts: Record<string, unknown>[] = hosts3();
        hosts[0] = { ...hosts[0], privateKey: "CP-KEY" };
        hosts[1] = { ...hosts[1], bastion: { address: "192.0.2.2", privateKey: "B2-KEY" } };
        hosts[2] = { ...hosts[2], bastion: false };
        const keys = sshKeys({ hosts, ssh: { privateKey: "SSH-KEY", bastion: { address: "192.0.2.1", privateKey: "B1-KEY" } } });
        expect(keys).toEqual({
            sshPrivateKey: "SSH-KEY",
            hostPrivateKeys: { "cp-1": "CP-KEY" },
            bastionPrivateKeys: { "cp-1": "B1-KEY", "worker-1": "B2-KEY" },
        });
        // as the entry point reads them: JSON text
        expect(sshKeys({ hosts: JSON.stringify(hosts), ssh: JSON.stringify({ privateKey: "K" }) }, { encoded: true }).hostPrivateKeys).toEqual({ "cp-1": "CP-KEY" });
    });

    test("a per-host or bastion key stored in plain text is refused, each with its own path and command", () => {
        const hosts: Record<string, unknown>[] = hosts3();
        hosts[1] = { ...hosts[1], privateKey: KEY, bastion: { address: "192.0.2.2", privateKey: KEY } };
        const raw = { hosts: JSON.stringify(hosts), ssh: JSON.stringify({ privateKey: KEY, bastion: { address: "192.0.2.1", privateKey: KEY } }) };
        const text = problems(raw, { encoded: true, secretKeys: ["ssh"] });
        expect(text).toContain("  - hosts[1].privateKey: is stored in plain text in Pulumi.<stack>.yaml (it was set without --secret): set it again as a secret with `pulumi config set --secret --path 'hosts[1].privateKey' < ~/.ssh/id_ed25519`");
        expect(text).toContain("  - hosts[1].bastion.privateKey: is stored in plain text");
        expect(text).not.toContain("ssh.bastion.privateKey");
        expect(text).not.toContain(KEY.split("\n")[1].slice(0, 20));
        // both secret (as `--secret --path` makes them): accepted
        expect(() => parseClusterConfig(raw, "demo", { encoded: true, secretKeys: ["ssh", "hosts"] })).not.toThrow();
        // the ssh section in plain text: its bastion key too
        expect(problems(raw, { encoded: true, secretKeys: ["hosts"] })).toContain("  - ssh.bastion.privateKey: is stored in plain text");
    });

    test("hosts stored as a secret (a per-host key): its values are never quoted in a message", () => {
        const hosts: Record<string, unknown>[] = hosts3();
        hosts[1] = { ...hosts[1], privateKey: KEY, user: "Not-A-User-zz9" };
        const text = problems({ hosts: JSON.stringify(hosts), ssh: JSON.stringify({ privateKey: KEY }) }, { encoded: true, secretKeys: ["ssh", "hosts"] });
        expect(text).toContain("  - hosts[1].user: a string of 14 characters (not shown: it is stored as a secret) is not a valid user name");
        expect(text).not.toContain("zz9");
    });
});

// ---------------------------------------------------------------------------
// The connection each step gets
// ---------------------------------------------------------------------------

type Conn = {
    host: string; port: number; user: string; privateKey?: string; hostKey?: string; agentSocketPath?: string;
    dialErrorLimit: number; perDialTimeout: number;
    proxy?: { host: string; port: number; user: string; privateKey?: string; hostKey?: string };
};
const connOf = (run: Run, name: string): Conn => reveal<Conn>(run.byName(name).inputs.connection);

describe("the connection of every step", () => {
    const hostKey = pubKey("ssh-ed25519");
    let run: Run;
    beforeAll(async () => {
        const hosts: Record<string, unknown>[] = rawConfig().hosts as Record<string, unknown>[];
        hosts[0] = { ...hosts[0], hostKey };
        hosts[1] = { ...hosts[1], privateKey: OTHER_KEY, bastion: { address: "198.51.100.7", user: "jump", port: 2200, hostKey } };
        hosts[2] = { ...hosts[2], bastion: false };
        run = await runProgram(rawConfig({ hosts, ssh: { user: "ubuntu", privateKey: KEY, bastion: { address: "198.51.100.1", privateKey: BASTION_KEY } } }));
    });

    test("is one secret, whole, as the provider stores it (the SDK wraps it: no spurious diff, pulumi-command#447)", () => {
        for (const c of run.commands()) expect(isSecretValue(c.inputs.connection)).toBe(true);
    });

    test("cluster bastion, with its own key; the host's pinned key; no agent socket path", () => {
        const c = connOf(run, "cp-1-prepare");
        expect(c).toMatchObject({ host: "192.0.2.10", user: "ubuntu", privateKey: KEY, hostKey });
        expect(c.proxy).toEqual({ host: "198.51.100.1", port: 22, user: "ubuntu", privateKey: BASTION_KEY, dialErrorLimit: 5, perDialTimeout: 10 });
        expect(c.agentSocketPath).toBeUndefined();
    });

    test("a host's own bastion and key: the bastion signs in with the host's key when it has none of its own", () => {
        const c = connOf(run, "worker-1-join");
        expect(c).toMatchObject({ host: "192.0.2.11", privateKey: OTHER_KEY });
        expect(c.hostKey).toBeUndefined();
        expect(c.proxy).toEqual({ host: "198.51.100.7", port: 2200, user: "jump", privateKey: OTHER_KEY, hostKey, dialErrorLimit: 5, perDialTimeout: 10 });
    });

    test("no private key (per-host, bastion, cluster) is anywhere in a plain resource input", () => {
        const markers = [KEY, OTHER_KEY, BASTION_KEY].map((k) => k.split("\n")[1].slice(0, 24));
        for (const r of run.resources) {
            const plain = plainStrings(r.inputs).join("\n");
            for (const m of markers) expect(plain).not.toContain(m);
        }
    });

    test("the command text says which jump host a step goes through (the connection itself is secret in a preview)", () => {
        const first = (name: string) => reveal<string>(run.byName(name).inputs.create).split("\n")[0];
        expect(first("worker-1-prepare")).toBe("# kubeadm-pulumi step worker-1-prepare: prepare on worker-1 (ubuntu@192.0.2.11:22 via jump@198.51.100.7:2200)");
        expect(first("worker-1-token")).toMatch(/ on cp-1 \(ubuntu@192\.0\.2\.10:22 via ubuntu@198\.51\.100\.1:22\)$/);
        expect(first("worker-2-prepare")).toMatch(/ on worker-2 \(ubuntu@192\.0\.2\.12:22\)$/);
    });

    test("bastion: false connects directly; steps on cp-1 for a worker use cp-1's connection", () => {
        expect(connOf(run, "worker-2-prepare").proxy).toBeUndefined();
        expect(connOf(run, "worker-1-token")).toEqual(connOf(run, "cp-1-init"));
    });

    test("with ssh.useAgent and no key: no privateKey anywhere (the provider signs with SSH_AUTH_SOCK's agent)", async () => {
        const r = await runProgram(rawConfig({ ssh: { user: "ubuntu", useAgent: true, bastion: { address: "198.51.100.1" } } }));
        for (const c of r.commands()) {
            const conn = reveal<Conn>(c.inputs.connection);
            expect(conn.privateKey).toBeUndefined();
            expect(conn.proxy?.privateKey).toBeUndefined();
            expect(conn.agentSocketPath).toBeUndefined();
        }
    });
});

// ---------------------------------------------------------------------------
// What a change of each SSH setting does to the steps
// ---------------------------------------------------------------------------

describe("what a change of an SSH setting re-runs", () => {
    const calls: CommandCall[] = [];
    const execute = async (call: CommandCall) => {
        calls.push(call);
        const node = call.name.replace(/-preflight$/, "");
        return { stdout: call.name.endsWith("-preflight") ? JSON.stringify(healthyFacts(node)) + "\n" : "", stderr: "" };
    };
    const hostsWith = (w1: Record<string, unknown> = {}, w2: Record<string, unknown> = {}) => {
        const hosts = rawConfig().hosts as Record<string, unknown>[];
        return [hosts[0], { ...hosts[1], ...w1 }, { ...hosts[2], ...w2 }];
    };
    const base = () => rawConfig({ hosts: hostsWith({}, { bastion: false }), ssh: { user: "ubuntu", privateKey: KEY, bastion: { address: "198.51.100.1" } } });
    let state: EngineState;
    beforeAll(async () => {
        state = (await runProgram(base(), { execute })).state;
    });
    const changed = (run: Run) => run.operations.filter((o) => o.op !== "same" && run.byName(o.name).type === "command:remote:Command").map((o) => o.name).sort();

    test("nothing changed: every step is the same (the connection compares equal to the one in state)", async () => {
        const run = await runProgram(base(), { execute, state });
        expect(changed(run)).toEqual([]);
    });

    test("nothing changed, ssh-agent only (no secret inside the connection): still the same (the SDK sends the connection as one secret)", async () => {
        const agentOnly = () => rawConfig({ hosts: hostsWith(), ssh: { user: "ubuntu", useAgent: true, bastion: { address: "198.51.100.1" } } });
        const first = await runProgram(agentOnly(), { execute });
        for (const c of first.commands()) expect(isSecretValue(c.inputs.connection)).toBe(true);
        const second = await runProgram(agentOnly(), { execute, state: first.state });
        expect(changed(second)).toEqual([]);
    });

    test("retuned dial retries (as a new program version would set them): no step re-runs", async () => {
        const retuned = new Map<string, StateEntry>();
        for (const [name, e] of state) {
            const conn = e.inputs.connection as Conn | undefined;
            if (!conn) {
                retuned.set(name, e);
                continue;
            }
            const proxy = conn.proxy ? { proxy: { ...conn.proxy, dialErrorLimit: 99, perDialTimeout: 99 } } : {};
            retuned.set(name, { ...e, inputs: { ...e.inputs, connection: { ...conn, dialErrorLimit: 99, perDialTimeout: 99, ...proxy } } });
        }
        const run = await runProgram(base(), { execute, state: retuned });
        expect(changed(run)).toEqual([]);
    });

    test("worker-1 gets its own bastion: only worker-1's own steps update, nothing on cp-1 or worker-2", async () => {
        const raw = { ...base(), hosts: hostsWith({ bastion: { address: "198.51.100.9" } }, { bastion: false }) };
        const mark = calls.length;
        const run = await runProgram(raw, { execute, state });
        expect(changed(run)).toEqual(["worker-1-join", "worker-1-preflight", "worker-1-prepare", "worker-1-scripts"]);
        // steps with an undo re-run by their update command (kept claim), never by create
        const ran = calls.slice(mark).map((c) => `${c.name}:${c.field}`).sort();
        expect(ran).toEqual(["worker-1-join:update", "worker-1-preflight:create", "worker-1-prepare:create", "worker-1-scripts:update"]);
    });

    test("ssh.bastion moves: every step on a host behind it updates; the host with bastion: false only has its steps that run on cp-1 update", async () => {
        const raw = { ...base(), ssh: { user: "ubuntu", privateKey: KEY, bastion: { address: "198.51.100.2" } } };
        const run = await runProgram(raw, { execute, state });
        const c = changed(run);
        // token and node run on cp-1, which is behind the bastion
        expect(c.filter((n) => n.startsWith("worker-2-"))).toEqual(["worker-2-node", "worker-2-token"]);
        expect(c).toContain("cp-1-init");
        expect(c).toContain("worker-1-prepare");
    });

    test("a new key: every step updates (the key must reach the state, deletes use it); init and joins by their update command", async () => {
        const raw = { ...base(), ssh: { user: "ubuntu", privateKey: OTHER_KEY, bastion: { address: "198.51.100.1" } } };
        const mark = calls.length;
        const run = await runProgram(raw, { execute, state });
        expect(run.operations.filter((o) => o.op === "replace")).toEqual([]);
        const ran = calls.slice(mark);
        expect(ran.length).toBe(run.commands().length);
        for (const c of ran) {
            const hasUpdate = typeof reveal<Record<string, unknown>>(run.byName(c.name).inputs).update === "string";
            expect(`${c.name}:${c.field}`).toBe(`${c.name}:${hasUpdate ? "update" : "create"}`);
        }
        expect(ran.find((c) => c.name === "cp-1-init")?.field).toBe("update");
    });
});

// ---------------------------------------------------------------------------
// The reachability check against real SSH servers on loopback
// ---------------------------------------------------------------------------

/** A real SSH server (ssh2's) on 127.0.0.1 with its own host key; `forward` lets signed-in users open TCP connections (a bastion). */
async function sshServer(opts: { authorized?: string; forward?: boolean | "never-answers"; endAtSignIn?: boolean }): Promise<{ port: number; hostKey: string; close(): void }> {
    const host = utils.generateKeyPairSync("ed25519");
    const allowed = opts.authorized ? utils.parseKey(opts.authorized) : undefined;
    const server = new Server({ hostKeys: [host.private] }, (client) => {
        client.on("error", () => undefined);
        client.on("authentication", (ctx) => {
            // (what sshd does when its PAM account stage refuses the user: drop the connection, no failure message)
            if (opts.endAtSignIn) return client.end();
            if (!allowed || allowed instanceof Error || ctx.method !== "publickey") return ctx.reject(["publickey"]);
            if (!ctx.key.data.equals(allowed.getPublicSSH())) return ctx.reject(["publickey"]);
            if (!ctx.signature || !ctx.blob) return ctx.accept();
            return allowed.verify(ctx.blob, ctx.signature, ctx.hashAlgo) === true ? ctx.accept() : ctx.reject(["publickey"]);
        });
        client.on("ready", () => {
            client.on("tcpip", (accept, reject, info) => {
                if (!opts.forward) return reject();
                // (a bastion whose own connect to the host hangs: a host that drops packets)
                if (opts.forward === "never-answers") return;
                const sock = net.connect(info.destPort, info.destIP);
                sock.on("error", () => undefined);
                sock.once("connect", () => {
                    const stream = accept();
                    stream.pipe(sock).pipe(stream);
                });
                sock.once("error", () => reject());
            });
        });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const pub = host.public.split(" ").slice(0, 2).join(" ");
    return { port: (server.address() as net.AddressInfo).port, hostKey: pub, close: () => server.close() };
}

/** A port nothing listens on. */
async function deadPort(): Promise<number> {
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
    const port = (s.address() as net.AddressInfo).port;
    await new Promise((r) => s.close(r));
    return port;
}

describe("reachability check: through a real bastion, pinned host keys (ssh2 servers on loopback)", () => {
    const user = utils.generateKeyPairSync("ed25519");
    const stranger = utils.generateKeyPairSync("ed25519");
    let bastion: Awaited<ReturnType<typeof sshServer>>;
    let target: Awaited<ReturnType<typeof sshServer>>;
    let noForward: Awaited<ReturnType<typeof sshServer>>;
    let refusing: Awaited<ReturnType<typeof sshServer>>;
    let stalling: Awaited<ReturnType<typeof sshServer>>;
    beforeAll(async () => {
        bastion = await sshServer({ authorized: user.public, forward: true });
        noForward = await sshServer({ authorized: user.public, forward: false });
        refusing = await sshServer({ authorized: user.public, forward: true, endAtSignIn: true });
        stalling = await sshServer({ authorized: user.public, forward: "never-answers" });
        target = await sshServer({});
    });
    afterAll(() => [bastion, target, noForward, refusing, stalling].forEach((s) => s?.close()));

    const hostSpec = (over: Partial<HostSpec> = {}): HostSpec => ({
        name: "node-1", address: "127.0.0.1", port: target.port, user: "root", roles: ["worker"], labels: {}, taints: [], ...over,
    });
    const via = (b: { port: number; hostKey?: string }): HostSpec["bastion"] => ({ address: "127.0.0.1", port: b.port, user: "jump", ...(b.hostKey ? { hostKey: b.hostKey } : {}) });

    test("through the bastion, with both host keys pinned: reachable", async () => {
        const h = hostSpec({ hostKey: target.hostKey, bastion: via({ port: bastion.port, hostKey: bastion.hostKey }) });
        expect(await probeHost(h, { privateKey: user.private }, 5000)).toBeUndefined();
    });

    test("through the bastion, no pins: the host's greeting comes through the forwarded channel", async () => {
        expect(await probeHost(hostSpec({ bastion: via(bastion) }), { privateKey: user.private }, 5000)).toBeUndefined();
    });

    test("the bastion refuses the key: the bastion hop is named", async () => {
        const r = await probeHost(hostSpec({ bastion: via(bastion) }), { privateKey: stranger.private }, 5000);
        expect(r).toMatch(new RegExp(`^bastion jump@127\\.0\\.0\\.1:${bastion.port}: signing in failed \\(the key was refused\\)`));
    });

    test("the bastion's host key is not the pinned one: both fingerprints, the bastion hop named", async () => {
        const r = await probeHost(hostSpec({ bastion: via({ port: bastion.port, hostKey: target.hostKey }) }), { privateKey: user.private }, 5000);
        expect(r).toMatch(/^bastion jump@127\.0\.0\.1:\d+: the bastion presented the ssh-ed25519 host key SHA256:\S+, not the pinned SHA256:\S+ \(bastion\.hostKey\)/);
    });

    test("the bastion does not forward: said so, with the fix", async () => {
        const r = await probeHost(hostSpec({ bastion: via(noForward) }), { privateKey: user.private }, 5000);
        expect(r).toMatch(/^the bastion \(bastion jump@127\.0\.0\.1:\d+\) signed us in but could not connect to 127\.0\.0\.1:\d+: /);
    });

    test("the bastion drops the connection while signing in (sshd's PAM refusing the account): named at once, no hang", async () => {
        const started = Date.now();
        const r = await probeHost(hostSpec({ bastion: via(refusing) }), { privateKey: user.private }, 5000);
        expect(r).toMatch(/^bastion jump@127\.0\.0\.1:\d+: the bastion closed the connection before a session was ready \(its sshd refused jump: /);
        expect(Date.now() - started).toBeLessThan(4000);
    });

    test("the bastion never gets a connection to the host (a host that drops packets): the check gives up after its timeout, naming the host hop", async () => {
        const started = Date.now();
        const r = await probeHost(hostSpec({ bastion: via(stalling) }), { privateKey: user.private }, 2000);
        expect(r).toMatch(/^the bastion \(bastion jump@127\.0\.0\.1:\d+\) signed us in but got no connection to 127\.0\.0\.1:\d+ within 2 s \(host down/);
        expect(Date.now() - started).toBeLessThan(5000);
    });

    test("the host behind the bastion is down: the host hop is named", async () => {
        const r = await probeHost(hostSpec({ port: await deadPort(), bastion: via(bastion) }), { privateKey: user.private }, 5000);
        expect(r).toMatch(/signed us in but could not connect to 127\.0\.0\.1:\d+/);
    });

    test("the host's key is not the pinned one (through the bastion): through the bastion, the host: both fingerprints", async () => {
        const r = await probeHost(hostSpec({ hostKey: bastion.hostKey, bastion: via(bastion) }), { privateKey: user.private }, 5000);
        expect(r).toMatch(/^through the bastion, the host: the host presented the ssh-ed25519 host key SHA256:\S+, not the pinned SHA256:\S+ \(hosts\[\]\.hostKey\)/);
    });

    test("direct, pinned: a match passes, a mismatch fails; an unpinned host only needs its greeting", async () => {
        expect(await probeHost(hostSpec({ hostKey: target.hostKey }), {}, 5000)).toBeUndefined();
        expect(await probeHost(hostSpec({ hostKey: bastion.hostKey }), {}, 5000)).toMatch(/presented the ssh-ed25519 host key/);
        expect(await probeHost(hostSpec(), {}, 5000)).toBeUndefined();
    });

    test("checkReachable lists every failing host with the path it takes", async () => {
        const hosts = [
            hostSpec({ name: "ok", bastion: via(bastion) }),
            hostSpec({ name: "bad-key", bastion: via(bastion) }),
        ];
        const err = await checkReachable(hosts, { ok: { privateKey: user.private }, "bad-key": { privateKey: stranger.private } }, 5000).catch((e) => e);
        expect(err).toBeInstanceOf(UnreachableHostsError);
        expect(err.message).toMatch(new RegExp(`^1 host is not reachable over SSH from here \\(nothing was touched\\):\\n  - bad-key \\(127\\.0\\.0\\.1:${target.port} via jump@127\\.0\\.0\\.1:${bastion.port}\\): bastion jump@`));
    });

    test("ssh.useAgent without an agent: refused before any host is tried, with the fix", async () => {
        const h = hostSpec({ useAgent: true });
        await expect(checkReachable([h], {}, 5000, {})).rejects.toThrow(SshAgentError);
        await expect(checkReachable([h], {}, 5000, {})).rejects.toThrow(/SSH_AUTH_SOCK is not set where pulumi runs.*ssh-add/);
        await expect(checkReachable([h], {}, 5000, { SSH_AUTH_SOCK: "/nonexistent/agent.sock" })).rejects.toThrow(/SSH_AUTH_SOCK=\/nonexistent\/agent\.sock does not exist/);
    });
});

describe("through index.ts (the entry point reads the keys from the stack config)", () => {
    test("per-host and bastion keys stored as secrets reach the right connections and nothing plain", async () => {
        const hosts: Record<string, unknown>[] = rawConfig().hosts as Record<string, unknown>[];
        hosts[1] = { ...hosts[1], privateKey: OTHER_KEY };
        const run = await runProgram(rawConfig({ hosts, ssh: { user: "ubuntu", privateKey: KEY, bastion: { address: "198.51.100.1", privateKey: BASTION_KEY } } }), {
            secretKeys: ["ssh", "hosts"],
            // (a preview: at up, index.ts would dial these documentation addresses)
            preview: true,
            loadIndex: () => require("../index"),
        });
        expect(run.errors).toEqual([]);
        const w1 = connOf(run, "worker-1-prepare");
        expect(w1.privateKey).toBe(OTHER_KEY);
        expect(w1.proxy?.privateKey).toBe(BASTION_KEY);
        expect(connOf(run, "cp-1-prepare").privateKey).toBe(KEY);
        const markers = [KEY, OTHER_KEY, BASTION_KEY].map((k) => k.split("\n")[1].slice(0, 24));
        for (const r of run.resources) {
            const plain = plainStrings(r.inputs).join("\n");
            for (const m of markers) expect(plain).not.toContain(m);
        }
    });
});
