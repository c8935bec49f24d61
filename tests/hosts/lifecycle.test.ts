/**
 * The whole life of a cluster on real hosts, driven by the harness's model of
 * the Pulumi engine (tests/harness.ts: create / update / same / replace per
 * resource, deletes at the end in reverse dependency order, the first failure
 * stops new operations): `up`, a second `up` that changes nothing, re-runs,
 * a held dpkg lock, an SSH connection dropped mid-step, `up --replace` of
 * every step with a delete (none may touch a node still in the stack), a
 * change every step takes (the SSH user), a change a live cluster cannot take
 * (refused before anything runs), a host that fails preflight (it never gets
 * a join token), an add-on failure after a join, a step failure's message, an
 * unreachable host (fails fast), removing a worker, and teardown leaving no
 * residue.
 *
 * Real: Debian 12 + systemd + sshd, sudo, apt/dpkg, files, units, sysctl,
 * iptables/nftables, network interfaces, the scripts. STAND-INS (see
 * tests/hosts/standins/README.md): kubeadm, kubelet, kubectl, crictl and
 * containerd.io, installed by apt from a local repository through the
 * program's `packages.localRepository` option. There is no API server: what
 * passes here is the scripts' behaviour on a host, not a working cluster.
 */
import { execFileSync } from "child_process";
import * as http from "http";
import * as path from "path";
import { RawConfig } from "../../components/config";
import { CommandCall, EngineState, Run, SECRET_MARKERS, destroy, providerError, rawConfig, runProgram, testPki } from "../harness";
import { tier } from "../tier";
import { residueOf as hostResidue } from "./residue";
import { Sandbox, SandboxHost, sandboxAvailable, startSandbox } from "./sandbox";
import { serveDirectory } from "./serve";

const sandbox = tier("sandbox", "tests/hosts/lifecycle.test.ts", sandboxAvailable());

const REPO_ROOT = path.resolve(__dirname, "../..");


interface Execution {
    name: string;
    field: CommandCall["field"];
    op: string;
    host: string;
    start: number;
    end: number;
    code: number;
    stdout: string;
    stderr: string;
    command: string;
}

sandbox.describe("cluster lifecycle on real hosts (stand-in Kubernetes packages)", () => {
    let sb: Sandbox;
    let repo: { server: http.Server; port: number };
    let base: RawConfig;
    let up: Run;
    let state: EngineState;
    const executions: Execution[] = [];
    let cp: SandboxHost, w1: SandboxHost, w2: SandboxHost, w3: SandboxHost;

    const hostByAddress = (address: string) => {
        const h = sb.hosts.find((x) => x.address === address);
        if (!h) throw new Error(`no sandbox host at ${address}`);
        return h;
    };

    /** Run one command the way the command provider would: over SSH, stdin fed, non-zero exit is a failure with the provider's message. */
    async function execute(call: CommandCall, timeoutMs = 600000): Promise<{ stdout: string; stderr: string }> {
        const host = hostByAddress(call.connection.host);
        const start = Date.now();
        const r = await sb.ssh(host, call.connection.user, call.command, call.stdin, timeoutMs);
        executions.push({ name: call.name, field: call.field, op: call.op, host: host.name, start, end: Date.now(), code: r.code, stdout: r.stdout, stderr: r.stderr, command: call.command });
        if (r.code !== 0) throw new Error(providerError(call.command, r.code, r.stdout + r.stderr));
        return { stdout: r.stdout, stderr: r.stderr };
    }

    /** The executions of one run (those after `mark`). */
    const since = (mark: number) => executions.slice(mark);
    const exec = (name: string, field: CommandCall["field"] = "create") => [...executions].reverse().find((e) => e.name === name && e.field === field)!;

    /** Configs of this test: hosts by sandbox host, as control plane or workers. */
    function config(workers: SandboxHost[], o: Partial<RawConfig> = {}): RawConfig {
        return { ...base, hosts: [
            { name: cp.name, address: cp.address, roles: ["control-plane"] },
            ...workers.map((w) => ({ name: w.name, address: w.address, roles: ["worker"] })),
        ], ...o };
    }

    /** `pulumi up` of `raw` against the real hosts, from the current state. */
    async function pulumiUp(raw: RawConfig, o: { replace?: string[]; preview?: boolean; failResources?: string[]; checkReachability?: boolean } = {}) {
        const mark = executions.length;
        const t0 = Date.now();
        const run = await runProgram(raw, { execute, state, ...o });
        // the engine keeps every operation that succeeded, also in a failed run
        if (!o.preview) state = run.state;
        return { run, ran: since(mark), seconds: (Date.now() - t0) / 1000 };
    }

    const sh = async (h: SandboxHost, command: string) => (await sb.ssh(h, "root", command)).stdout;
    const joined = async (h: SandboxHost) => (await sh(h, "test -f /etc/kubernetes/kubelet.conf && systemctl is-active kubelet || echo no")).trim() === "active";
    const liveTokens = async () => (await sh(cp, "ls /var/lib/kubeadm-pulumi-standins/api/secrets/kube-system/ 2>/dev/null | wc -l")).trim();
    /** What the control plane's API did to a node: deleted, drained (stand-in records). */
    const nodeRecords = async (node: string) =>
        (await sh(cp, `cd /var/lib/kubeadm-pulumi-standins/api/nodes 2>/dev/null && ls ${node}.deleted ${node}.drained 2>/dev/null; true`)).trim();

    beforeAll(async () => {
        sandbox.require();
        const out = execFileSync("bash", [path.join(REPO_ROOT, "tests/hosts/standins/build.sh"), "1.36.4", "2.2.6"], { encoding: "utf8" });
        const repoDir = out.trim().split("\n").pop()!;
        sb = await startSandbox(["lc-cp", "lc-w1", "lc-w2", "lc-w3"]);
        [cp, w1, w2, w3] = sb.hosts;
        repo = await serveDirectory(repoDir, sb.gateway);
        base = rawConfig({
            ssh: { user: "kube", privateKey: sb.privateKey },
            kubernetesVersion: "1.36.4",
            packages: { localRepository: { apt: `http://${sb.gateway}:${repo.port}/ ./` } },
            // Sandbox hosts run cgroup v1 (the machine's); the stand-in kubelet does not care.
            preflight: { ignore: ["cgroup", "disk"] },
            // The stand-ins run no workloads: the add-ons and the smoke test run for real on the cluster tier.
            addons: { ingress: false, metricsServer: false, smokeTest: false },
        });
        state = new Map();
        up = (await pulumiUp(config([w1, w2]), { checkReachability: true })).run;
    }, 20 * 60 * 1000);

    afterAll(async () => {
        repo?.server.close();
        await sb?.stop();
    }, 60000);

    test("up: every remote step ran once, by its create command, none failed", () => {
        expect(up.failures.map((f) => `${f.name}: ${f.error.message.split("\n").slice(-5).join("\n")}`)).toEqual([]);
        expect(up.errors).toEqual([]);
        const ran = executions.map((e) => `${e.name}:${e.field}`).sort();
        expect(ran).toEqual(up.commands().map((c) => `${c.name}:create`).sort());
        expect(ran).toHaveLength(17);
        const t0 = Math.min(...executions.map((e) => e.start));
        console.log("[lifecycle] step timings (s, from start of up):\n" + executions
            .map((e) => `  ${e.name.padEnd(16)} ${((e.start - t0) / 1000).toFixed(1).padStart(6)} -> ${((e.end - t0) / 1000).toFixed(1).padStart(6)}  (${((e.end - e.start) / 1000).toFixed(1)})`)
            .join("\n"));
    });

    test("up ran in the program's order: scripts -> preflight -> prepare -> init -> token -> join -> node", () => {
        for (const c of up.commands()) {
            for (const dep of c.dependsOn) {
                const d = up.resources.find((r) => r.name === dep);
                if (d?.type !== "command:remote:Command") continue;
                expect({ step: c.name, startedAfter: dep, ok: exec(c.name).start >= exec(dep).end }).toEqual({ step: c.name, startedAfter: dep, ok: true });
            }
        }
        // the token is made only once the node's host is prepared
        expect(exec("lc-w1-token").start).toBeGreaterThanOrEqual(exec("lc-w1-prepare").end);
    });

    test("hosts were prepared in parallel, and the workers joined in parallel", () => {
        const overlap = (a: Execution, b: Execution) => a.start < b.end && b.start < a.end;
        expect(overlap(exec("lc-cp-prepare"), exec("lc-w1-prepare"))).toBe(true);
        expect(overlap(exec("lc-w1-prepare"), exec("lc-w2-prepare"))).toBe(true);
        // Joins overlap only if the two prepares happened to end close together; what
        // the program promises is that no worker waits for another: each step starts as
        // soon as its own dependencies are done, never after an unrelated worker's step.
        for (const w of ["lc-w1", "lc-w2"]) {
            const other = w === "lc-w1" ? "lc-w2" : "lc-w1";
            for (const step of ["token", "join", "node"]) {
                const c = up.commands().find((r) => r.name === `${w}-${step}`)!;
                expect(c.dependsOn.filter((d) => d.startsWith(other))).toEqual([]);
                const ready = Math.max(...c.dependsOn.filter((d) => executions.some((e) => e.name === d)).map((d) => exec(d).end));
                expect({ step: c.name, waited: exec(c.name).start - ready < 1000 }).toEqual({ step: c.name, waited: true });
            }
        }
    });

    test("every step showed what it is and where it runs, and a short summary", () => {
        for (const e of executions) {
            expect(e.command.split("\n")[0]).toMatch(new RegExp(`^# kubeadm-pulumi step ${e.name}: [a-z-]+ on lc-[a-z0-9]+ \\(kube@10\\.`));
            expect(Buffer.byteLength(e.command)).toBeLessThan(4000);
        }
        expect(exec("lc-cp-scripts").stdout).toMatch(/step scripts: installed to \/usr\/local\/lib\/kubeadm-pulumi\/[0-9a-f]{12}/);
    });

    test("the stand-in packages came from the local repository, pinned and held", async () => {
        for (const h of [cp, w1, w2]) {
            const r = await sb.ssh(h, "root", "dpkg-query -W -f='${Package}=${Version}\\n' kubeadm kubelet kubectl containerd.io; apt-mark showhold; cat /etc/apt/sources.list.d/kubeadm-pulumi-local.list");
            expect(r.stdout).toContain("kubeadm=1.36.4-1.1");
            expect(r.stdout).toContain("containerd.io=2.2.6-1~debian.12~bookworm");
            expect(r.stdout).toContain(`deb [trusted=yes] http://${sb.gateway}:${repo.port}/ ./`);
        }
    });

    test("init: kubeadm validated the program's config and ran init with the program's CA", async () => {
        const log = await sh(cp, "cat /var/log/kubeadm-pulumi-standins/kubeadm.log");
        const calls = log.trim().split("\n").map((l) => JSON.parse(l) as { argv: string[]; exit: number });
        expect(calls.find((c) => c.argv.includes("validate"))?.exit).toBe(0);
        const init = calls.find((c) => c.argv[1] === "init");
        expect(init?.argv).toEqual(expect.arrayContaining(["--skip-token-print", "--skip-certificate-key-print"]));
        expect(init?.exit).toBe(0);
        expect(await sh(cp, "cat /etc/kubernetes/pki/ca.crt")).toBe(testPki().caCert);
        expect((await sh(cp, "stat -c %a /etc/kubernetes/pki/ca.key /etc/kubernetes/pki/sa.key")).trim().split("\n")).toEqual(["600", "600"]);
        expect(exec("lc-cp-init").stdout).toMatch(/initialised: lc-cp is the first control plane/);
    });

    test("each worker joined with its own token, which the node step deleted once the node registered", async () => {
        for (const w of [w1, w2]) {
            expect(await joined(w)).toBe(true);
            expect(exec(`${w.name}-node`).stdout).toMatch(new RegExp(`deleted bootstrap token [a-z0-9]{6} of ${w.name}`));
        }
        expect(await liveTokens()).toBe("0");
        const kubectl = await sh(cp, "cat /var/log/kubeadm-pulumi-standins/kubectl.log");
        expect(kubectl).toContain("--server-side");
        expect(kubectl).toContain("node-role.kubernetes.io/worker=");
    });

    test("no secret reached any log, output or file outside its place", async () => {
        const keyLine = testPki().caKey.trim().split("\n")[1];
        const tokenSecrets = up.resources.filter((r) => r.type === "random:index:RandomPassword").map((r) => SECRET_MARKERS.tokenSecret(r.name));
        expect(tokenSecrets).toHaveLength(2);
        const outputs = executions.map((e) => e.stdout + e.stderr + e.command).join("\n");
        expect(outputs).not.toContain(keyLine);
        for (const t of tokenSecrets) expect(outputs).not.toContain(t);
        for (const h of [cp, w1, w2]) {
            const logs = await sh(h, "cat /var/log/kubeadm-pulumi-standins/*.log /var/log/kubeadm-pulumi/*.log 2>/dev/null; journalctl --no-pager -q 2>/dev/null | tail -n 2000");
            expect(logs).not.toContain(keyLine);
            for (const t of tokenSecrets) expect(logs).not.toContain(t);
            expect((await sh(h, "ls -d /run/kubeadm-pulumi.* 2>/dev/null | wc -l")).trim()).toBe("0");
        }
    });

    test("a second up with the same config changes nothing: no step runs", async () => {
        const { run, ran } = await pulumiUp(config([w1, w2]));
        expect(ran.map((e) => e.name)).toEqual([]);
        expect(run.operations.filter((o) => o.op !== "same")).toEqual([]);
    });

    test("re-running every step's update command changes nothing on the hosts", async () => {
        const snapshot = (h: SandboxHost) => sh(h, [
            "sha256sum /etc/containerd/config.toml /etc/crictl.yaml /etc/sysctl.d/99-kubeadm-pulumi.conf /etc/modules-load.d/kubeadm-pulumi.conf /etc/apt/sources.list.d/*.list /etc/fstab /etc/kubernetes/*.conf /var/lib/kubelet/config.yaml 2>/dev/null",
            "for u in containerd kubelet; do echo $u $(systemctl is-enabled $u) $(systemctl is-active $u) $(systemctl show -p MainPID --value $u); done",
            "dpkg-query -W -f='${Package}=${Version} ${Status}\\n' kubeadm kubelet kubectl containerd.io",
            "find /var/lib/kubeadm-pulumi/claims -type f | sed 's/claim\\..*//' | sort | uniq -c",
        ].join("; "));
        const before = await Promise.all([cp, w1, w2].map(snapshot));
        const again = (name: string) => {
            const e = state.get(name)!;
            const i = e.inputs as { create: string; update?: string; stdin?: string; connection: CommandCall["connection"] };
            return execute({ name, field: i.update ? "update" : "create", command: i.update ?? i.create, op: "update", stdin: i.stdin, connection: i.connection });
        };
        for (const name of ["lc-cp-prepare", "lc-w1-prepare", "lc-w2-prepare"]) {
            const lines = (await again(name)).stdout.trim().split("\n");
            expect(lines.filter((l) => !/: unchanged$/.test(l))).toEqual([]);
            expect(lines.length).toBeGreaterThanOrEqual(8);
        }
        expect((await again("lc-cp-init")).stdout).toMatch(/already initialised/);
        expect((await again("lc-w1-join")).stdout).toMatch(/already joined/);
        expect((await again("lc-w1-scripts")).stdout).toMatch(/step scripts: unchanged/);
        const after = await Promise.all([cp, w1, w2].map(snapshot));
        expect(after).toEqual(before);
    });

    test("prepare waits for a dpkg lock held by another process, names it, then completes", async () => {
        const holder = [
            "use Fcntl;",
            "open(my $f, '>>', '/var/lib/dpkg/lock-frontend') or die \"open: $!\";",
            "my $lock = pack('s s x4 q q i x4', F_WRLCK, 0, 0, 0, 0);",
            "fcntl($f, F_SETLKW, $lock) or die \"lock: $!\";",
            "sleep 12;",
        ].join("\n");
        const hold = await sb.ssh(w1, "root", "cat > /run/hold-dpkg.pl && systemd-run --unit kp-hold-dpkg perl /run/hold-dpkg.pl && sleep 1 && grep -c POSIX /proc/locks", holder + "\n");
        expect({ code: hold.code, out: hold.stdout.trim() }).toEqual({ code: 0, out: "1" });
        const e = state.get("lc-w1-prepare")!.inputs as { create: string; connection: CommandCall["connection"] };
        const t0 = Date.now();
        const out = await execute({ name: "lc-w1-prepare", field: "create", command: e.create, op: "update", connection: e.connection });
        expect(Date.now() - t0).toBeGreaterThan(8000);
        expect(out.stderr).toMatch(/waiting for the package manager lock, held by: \d+ \(perl\)/);
        expect(out.stdout).toMatch(/images: unchanged/);
    });

    test("an SSH connection dropped in the middle of prepare: the next run completes", async () => {
        expect(await sb.ssh(w2, "root", "rm -f /etc/containerd/config.toml /etc/sysctl.d/99-kubeadm-pulumi.conf /etc/crictl.yaml && apt-mark unhold kubectl >/dev/null && apt-get -y -q remove kubectl >/dev/null")).toMatchObject({ code: 0 });
        const hold = await sb.ssh(w2, "root", "cat > /run/hold-dpkg.pl && systemd-run --unit kp-hold-dpkg2 perl /run/hold-dpkg.pl && sleep 1 && grep -c POSIX /proc/locks",
            ["use Fcntl;", "open(my $f, '>>', '/var/lib/dpkg/lock-frontend') or die;", "my $lock = pack('s s x4 q q i x4', F_WRLCK, 0, 0, 0, 0);",
                "fcntl($f, F_SETLKW, $lock) or die;", "sleep 8;"].join("\n") + "\n");
        expect(hold.code).toBe(0);
        const e = state.get("lc-w2-prepare")!.inputs as { create: string; connection: CommandCall["connection"] };
        const cut = await sb.ssh(w2, e.connection.user, e.create, undefined, 3000);
        expect(cut.code).toBe(124); // cut by the client's timeout, mid-step
        expect(cut.stdout).not.toMatch(/packages:/);
        const out = await execute({ name: "lc-w2-prepare", field: "create", command: e.create, op: "update", connection: e.connection });
        expect(out.stdout).toMatch(/packages: changed/);
        expect(out.stdout).toMatch(/containerd: changed/);
        const again = await execute({ name: "lc-w2-prepare", field: "create", command: e.create, op: "update", connection: e.connection });
        expect(again.stdout.trim().split("\n").filter((l) => !/: unchanged$/.test(l))).toEqual([]);
    });

    test.each([
        ["lc-w1-token", "a fresh token (the README's fix for an expired one)"],
        ["lc-w1-join", "the join"],
        ["lc-w1-node", "the registration"],
        ["lc-cp-init", "kubeadm init itself"],
        ["lc-w1-scripts", "the step scripts"],
    ])("pulumi up --replace %s (%s): the new instance is created, the old delete runs and keeps every node joined", async (name) => {
        const { run, ran } = await pulumiUp(config([w1, w2]), { replace: [name] });
        expect(run.failures.map((f) => f.error.message.slice(-400))).toEqual([]);
        const create = ran.find((e) => e.name === name && e.field === "create");
        const oldDelete = ran.find((e) => e.name === name && e.field === "delete");
        expect(create && oldDelete).toBeTruthy();
        expect(oldDelete!.start).toBeGreaterThanOrEqual(create!.end);
        expect(oldDelete!.stdout).toContain(`kept: another instance of step ${name} is live on this host`);
        for (const w of [w1, w2]) {
            expect(await joined(w)).toBe(true);
            expect(await nodeRecords(w.name)).toBe("");
        }
        expect(await sh(cp, "test -f /etc/kubernetes/admin.conf && echo up")).toBe("up\n");
        // a new token made by a replaced token step is gone again: the node step re-ran with it
        expect(await liveTokens()).toBe("0");
        if (name === "lc-w1-token") expect(ran.map((e) => `${e.name}:${e.field}`)).toContain("lc-w1-node:update");
        // one claim per step again
        const claims = await sh(name.startsWith("lc-cp") || name.endsWith("token") || name.endsWith("node") ? cp : w1, `ls /var/lib/kubeadm-pulumi/claims/${name} | wc -l`);
        expect(claims.trim()).toBe("1");
    });

    test("a change every step takes (the SSH user): each step re-runs by its update command, nothing is undone", async () => {
        const { run, ran } = await pulumiUp(config([w1, w2], { ssh: { user: "root", privateKey: sb.privateKey } }));
        expect(run.failures.map((f) => f.error.message.slice(-400))).toEqual([]);
        const updated = ran.filter((e) => e.op === "update").map((e) => `${e.name}:${e.field}`).sort();
        expect(updated).toEqual(expect.arrayContaining(["lc-cp-init:update", "lc-w1-join:update", "lc-w1-token:update", "lc-w1-node:update", "lc-w1-scripts:update", "lc-w1-prepare:create"]));
        expect(ran.filter((e) => e.field === "delete")).toEqual([]);
        expect(exec("lc-w1-join", "update").stdout).toMatch(/already joined/);
        for (const w of [w1, w2]) expect(await joined(w)).toBe(true);
        expect(await liveTokens()).toBe("0");
        base = { ...base, ssh: { user: "root", privateKey: sb.privateKey } };
    });

    test("labels and taints follow the config: added, changed and removed on the node by its node step", async () => {
        const records = async () => JSON.parse(`[${await sh(cp, "cat /var/lib/kubeadm-pulumi-standins/api/nodes/lc-w1.labels; echo ,; cat /var/lib/kubeadm-pulumi-standins/api/nodes/lc-w1.taints 2>/dev/null || echo '{}'")}]`);
        const withW1 = (labels: Record<string, string>, taints: unknown[]) => {
            const raw = config([w1, w2]);
            (raw.hosts as Record<string, unknown>[])[1] = { ...(raw.hosts as Record<string, unknown>[])[1], labels, taints };
            return raw;
        };
        const first = await pulumiUp(withW1({ tier: "web", zone: "a" }, [{ key: "dedicated", value: "gpu", effect: "NoSchedule" }]));
        expect(first.run.failures).toEqual([]);
        expect(first.ran.filter((e) => e.field === "delete")).toEqual([]);
        expect(first.ran.map((e) => `${e.name}:${e.field}`)).toEqual(expect.arrayContaining(["lc-w1-node:update"]));
        let [labels, taints] = await records();
        expect(labels).toMatchObject({ "node-role.kubernetes.io/worker": "", tier: "web", zone: "a" });
        expect(taints).toEqual({ "dedicated:NoSchedule": "gpu" });
        const second = await pulumiUp(withW1({ tier: "api" }, []));
        expect(second.run.failures).toEqual([]);
        expect(exec("lc-w1-node", "update").stdout).toContain("removed label zone from lc-w1");
        expect(exec("lc-w1-node", "update").stdout).toContain("removed taint dedicated:NoSchedule from lc-w1");
        [labels, taints] = await records();
        expect(labels).toEqual({ "node-role.kubernetes.io/worker": "", tier: "api" });
        expect(taints).toEqual({});
        expect(await joined(w1)).toBe(true);
        // back to the plain config for the tests below
        expect((await pulumiUp(config([w1, w2]))).run.failures).toEqual([]);
        expect((await records())[0]).toEqual({ "node-role.kubernetes.io/worker": "" });
    });

    test.each([
        ["a version bump", { kubernetesVersion: "1.36.5" }, "kubernetesVersion: \"1.36.4\" -> \"1.36.5\""],
        ["a new extra SAN", { apiServer: { extraSans: ["k8s.example.com"] } }, "apiServer.extraSans: \"\" -> \"k8s.example.com\""],
        ["another pod subnet", { network: { podSubnet: "10.32.0.0/16", cni: "flannel" } }, "network.podSubnet"],
    ])("%s of the live cluster is refused at preview and at up, before anything runs", async (_label, change, expected) => {
        for (const preview of [true, false]) {
            const { run, ran } = await pulumiUp({ ...config([w1, w2]), ...change }, { preview });
            expect(ran).toEqual([]);
            const message = run.errors.map((e) => e.message).join("\n");
            expect(message).toContain("Refused: 1 change that a running cluster cannot take (nothing was touched):");
            expect(message).toContain(expected);
        }
    });

    test("a host that fails preflight never gets a join token, and nothing after it starts", async () => {
        // a port the worker needs is taken on lc-w3
        expect((await sb.ssh(w3, "root", "systemd-run --unit kp-busy socat TCP-LISTEN:10250,fork,reuseaddr - >/dev/null && sleep 1 && ss -Hltn 'sport = :10250' | wc -l")).stdout.trim()).toBe("1");
        const { run, ran } = await pulumiUp(config([w1, w2, w3]));
        expect(run.failures.map((f) => f.name)).toEqual(["lc-w3-preflight"]);
        expect(ran.map((e) => e.name)).not.toContain("lc-w3-token");
        expect(await sh(cp, "grep -c lc-w3 /var/log/kubeadm-pulumi-standins/kubectl.log || true")).toBe("0\n");
        expect(await liveTokens()).toBe("0");
        // the cause is the first thing after the command line in the provider's message, which stays short
        const message = run.failures[0].error.message;
        expect(Buffer.byteLength(message)).toBeLessThan(4000);
        const lines = message.split("\n");
        expect(lines[0]).toMatch(/^Process exited with status 1: running "# kubeadm-pulumi step lc-w3-preflight: preflight on lc-w3 \(root@/);
        expect(lines.slice(1, 6).join("\n")).toContain("TCP port 10250 is already in use by socat");
        console.log(`[lifecycle] a failed preflight as the provider reports it (${Buffer.byteLength(message)} bytes):\n${message.slice(0, 1500)}`);
        await sb.ssh(w3, "root", "systemctl stop kp-busy");
    });

    test("adding a worker when the pod network add-on then fails: the worker joined and kept no token", async () => {
        const { run, ran } = await pulumiUp(config([w1, w2, w3]), { failResources: ["kubeadm-cluster-cni-release"] });
        expect(run.failures.map((f) => f.name)).toEqual(["kubeadm-cluster-cni-release"]);
        expect(ran.filter((e) => e.code !== 0)).toEqual([]);
        expect(await joined(w3)).toBe(true);
        expect(await liveTokens()).toBe("0");
        // the add-on waited for the join: it comes after every node step
        expect(run.byName("kubeadm-cluster-cni-release").dependsOn).toEqual(expect.arrayContaining(["lc-w3-node", "lc-w1-node", "lc-w2-node"]));
        // lc-w3-scripts succeeded in the run where its preflight failed: the engine kept it (one claim)
        expect(ran.find((e) => e.name === "lc-w3-scripts")).toBeUndefined();
        expect((await sh(w3, "ls /var/lib/kubeadm-pulumi/claims/lc-w3-scripts | wc -l")).trim()).toBe("1");
    });

    test("an unreachable host fails the run within seconds, naming it and the reason, before anything runs", async () => {
        // SSH to lc-w3 silently dropped: the provider would dial for minutes
        execFileSync("ip", ["netns", "exec", w3.netns, "iptables", "-I", "INPUT", "-p", "tcp", "--dport", "22", "-j", "DROP"]);
        try {
            const { run, ran, seconds } = await pulumiUp(config([w1, w2, w3]), { checkReachability: true });
            expect(ran).toEqual([]);
            expect(seconds).toBeLessThan(20);
            const message = run.errors.map((e) => e.message).join("\n");
            expect(message).toContain("1 host is not reachable over SSH from here (nothing was touched):");
            expect(message).toContain(`lc-w3 (${w3.address}:22): no answer within 10 s`);
        } finally {
            execFileSync("ip", ["netns", "exec", w3.netns, "iptables", "-D", "INPUT", "-p", "tcp", "--dport", "22", "-j", "DROP"]);
        }
    });

    test("removing a worker from the stack drains, resets and forgets it, then removes the scripts, in that order", async () => {
        const residue = await residueOf(w3);
        expect(residue).toContain("path /etc/kubernetes");
        const { run, ran } = await pulumiUp(config([w1, w2]));
        expect(run.failures).toEqual([]);
        const deletes = ran.filter((e) => e.field === "delete").map((e) => e.name);
        expect(deletes).toEqual(["lc-w3-node", "lc-w3-join", "lc-w3-token", "lc-w3-scripts"]);
        expect(exec("lc-w3-node", "delete").stdout).toContain("drained lc-w3");
        expect(exec("lc-w3-join", "delete").stdout).toContain("reset lc-w3");
        expect(exec("lc-w3-token", "delete").stdout).toContain("deleted node lc-w3");
        expect(await residueOf(w3)).toEqual([]);
        expect(await sh(w3, "ls /usr/local/lib/kubeadm-pulumi /var/lib/kubeadm-pulumi 2>&1 | grep -c 'No such' || true")).toBe("2\n");
        for (const w of [w1, w2]) expect(await joined(w)).toBe(true);
    });

    /** What a node leaves on a host (the stand-in kubelet makes it like a real one). */
    const residueOf = (h: SandboxHost) => hostResidue(sb, h);

    test("destroy: drain -> reset -> forget each worker, the first control plane last, no residue on any host", async () => {
        expect(await residueOf(w1)).toEqual(expect.arrayContaining(["path /etc/kubernetes", "link cni0", "cni-binary /opt/cni/bin/flannel"]));
        const mark = executions.length;
        const done = await destroy(state, execute);
        const ran = since(mark);
        expect(ran.filter((e) => e.code !== 0)).toEqual([]);
        const order = ran.map((e) => e.name);
        expect(order[order.length - 1]).toBe("lc-cp-scripts");
        expect(order.indexOf("lc-cp-init")).toBeLessThan(order.indexOf("lc-cp-scripts"));
        for (const w of ["lc-w1", "lc-w2"]) {
            expect(order.indexOf(`${w}-node`)).toBeLessThan(order.indexOf(`${w}-join`));
            expect(order.indexOf(`${w}-join`)).toBeLessThan(order.indexOf(`${w}-token`));
            expect(order.indexOf(`${w}-token`)).toBeLessThan(order.indexOf("lc-cp-init"));
        }
        expect(done.length).toBe([...state.values()].filter((e) => e.type === "command:remote:Command").length);
        for (const h of [cp, w1, w2]) {
            expect({ host: h.name, residue: await residueOf(h) }).toEqual({ host: h.name, residue: [] });
            expect((await sb.ssh(h, "root", "dpkg-query -W -f='${Status}' kubeadm")).stdout).toBe("hold ok installed");
            // the runtime runs on and never crashed (the stand-in, like containerd 2.x, exits if /etc/cni/net.d is removed)
            expect({ host: h.name, containerd: (await sh(h, "echo $(systemctl show -p ActiveState --value containerd) $(systemctl show -p NRestarts --value containerd)")).trim() })
                .toEqual({ host: h.name, containerd: "active 0" });
        }
        // a second destroy finds nothing to undo and still succeeds
        const again = executions.length;
        await destroy(state, execute);
        expect(since(again).filter((e) => e.code !== 0)).toEqual([]);
        expect(since(again).every((e) => /nothing to undo/.test(e.stderr) || e.code === 0)).toBe(true);
    });
});
