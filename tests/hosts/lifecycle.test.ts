/**
 * The whole life of a cluster on real hosts: `up` (every remote step of the
 * real program, run over real SSH when the Pulumi SDK registers it, so in the
 * program's own dependency order), idempotent re-runs, a held dpkg lock, an
 * SSH connection dropped mid-step, and teardown (the delete steps in reverse
 * dependency order) leaving no residue.
 *
 * Real: Debian 12 + systemd + sshd, sudo, apt/dpkg, files, units, sysctl,
 * iptables/nftables, network interfaces, the scripts. STAND-INS (see
 * tests/hosts/standins/README.md): kubeadm, kubelet, kubectl, crictl and
 * containerd.io, installed by apt from a local repository through the
 * program's `packages.localRepository` option. There is no API server: what
 * passes here is the scripts' behaviour on a host, not a working cluster.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as path from "path";
import { RawConfig } from "../../components/config";
import { CommandCall, Recorded, Run, SECRET_MARKERS, rawConfig, reveal, runProgram, testPki } from "../harness";
import { tier } from "../tier";
import { Sandbox, SandboxHost, sandboxAvailable, startSandbox } from "./sandbox";

const sandbox = tier("sandbox", "tests/hosts/lifecycle.test.ts", sandboxAvailable());

const REPO_ROOT = path.resolve(__dirname, "../..");

/** Serve a directory over HTTP on `address` (the stand-in apt repository). */
function serveDirectory(dir: string, address: string): Promise<{ server: http.Server; port: number }> {
    const server = http.createServer((req, res) => {
        const rel = decodeURIComponent((req.url ?? "/").split("?")[0]).replace(/^\/+/, "");
        const file = path.join(dir, rel);
        if (!file.startsWith(dir) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
            res.writeHead(404).end();
            return;
        }
        res.writeHead(200, { "content-length": fs.statSync(file).size });
        fs.createReadStream(file).pipe(res);
    });
    return new Promise((resolve) => server.listen(0, address, () => resolve({ server, port: (server.address() as { port: number }).port })));
}

interface Execution {
    name: string;
    host: string;
    start: number;
    end: number;
    stdout: string;
    stderr: string;
}

sandbox.describe("cluster lifecycle on real hosts (stand-in Kubernetes packages)", () => {
    let sb: Sandbox;
    let repo: { server: http.Server; port: number };
    let raw: RawConfig;
    let up: Run;
    const executions: Execution[] = [];
    let cp: SandboxHost, w1: SandboxHost, w2: SandboxHost;

    const hostByAddress = (address: string) => {
        const h = sb.hosts.find((x) => x.address === address);
        if (!h) throw new Error(`no sandbox host at ${address}`);
        return h;
    };

    /** Run one command the way the command provider would: over SSH, stdin fed, non-zero exit is a failure. */
    async function execute(call: CommandCall, timeoutMs = 600000): Promise<{ stdout: string; stderr: string }> {
        const host = hostByAddress(call.connection.host);
        const start = Date.now();
        const r = await sb.ssh(host, call.connection.user, call.create, call.stdin, timeoutMs);
        executions.push({ name: call.name, host: host.name, start, end: Date.now(), stdout: r.stdout, stderr: r.stderr });
        if (r.code !== 0) {
            throw new Error(`${call.name} on ${host.name} exited ${r.code}:\n${r.stderr.split("\n").slice(-30).join("\n")}`);
        }
        return { stdout: r.stdout, stderr: r.stderr };
    }

    /** A recorded command as the provider would run it again (update/replace), secrets revealed. */
    function call(r: Recorded, field: "create" | "delete" = "create"): CommandCall {
        const i = reveal<{ create: string; delete?: string; stdin?: string; connection: CommandCall["connection"] }>(r.inputs);
        return { name: `${r.name}:${field}`, create: field === "create" ? i.create : i.delete!, stdin: i.stdin, connection: i.connection };
    }

    const exec = (r: Recorded) => executions.find((e) => e.name === r.name)!;

    beforeAll(async () => {
        sandbox.require();
        const out = execFileSync("bash", [path.join(REPO_ROOT, "tests/hosts/standins/build.sh"), "1.36.4", "2.2.6"], { encoding: "utf8" });
        const repoDir = out.trim().split("\n").pop()!;
        sb = await startSandbox(["lc-cp", "lc-w1", "lc-w2"]);
        [cp, w1, w2] = sb.hosts;
        repo = await serveDirectory(repoDir, sb.gateway);
        raw = rawConfig({
            hosts: [
                { name: cp.name, address: cp.address, roles: ["control-plane"] },
                { name: w1.name, address: w1.address, roles: ["worker"] },
                { name: w2.name, address: w2.address, roles: ["worker"] },
            ],
            ssh: { user: "kube", privateKey: sb.privateKey },
            kubernetesVersion: "1.36.4",
            packages: { localRepository: { apt: `http://${sb.gateway}:${repo.port}/ ./` } },
            // Sandbox hosts run cgroup v1 (the machine's); the stand-in kubelet does not care.
            preflight: { ignore: ["cgroup"] },
        });
        up = await runProgram(raw, { execute });
    }, 20 * 60 * 1000);

    afterAll(async () => {
        repo?.server.close();
        await sb?.stop();
    }, 60000);

    test("up: every remote step ran, none failed", () => {
        expect(up.failures.map((f) => `${f.name}: ${f.error.message}`)).toEqual([]);
        const ran = executions.map((e) => e.name).sort();
        expect(ran).toEqual(up.commands().map((c) => c.name).sort());
        expect(ran).toHaveLength(13);
        // Per-step wall time on these hosts, for the README's performance estimate.
        const t0 = Math.min(...executions.map((e) => e.start));
        console.log("[lifecycle] step timings (s, from start of up):\n" + executions
            .map((e) => `  ${e.name.padEnd(16)} ${((e.start - t0) / 1000).toFixed(1).padStart(6)} -> ${((e.end - t0) / 1000).toFixed(1).padStart(6)}  (${((e.end - e.start) / 1000).toFixed(1)})`)
            .join("\n"));
    });

    test("up ran in the program's order: preflight -> prepare -> init -> token -> join -> node", () => {
        for (const c of up.commands()) {
            for (const dep of c.dependsOn) {
                const d = up.resources.find((r) => r.name === dep);
                if (d?.type !== "command:remote:Command") continue;
                expect({ step: c.name, startedAfter: dep, ok: exec(c).start >= exec(d).end }).toEqual({ step: c.name, startedAfter: dep, ok: true });
            }
        }
    });

    test("hosts were prepared in parallel, and the workers joined in parallel", () => {
        const overlap = (a: Execution, b: Execution) => a.start < b.end && b.start < a.end;
        const byName = (n: string) => executions.find((e) => e.name === n)!;
        expect(overlap(byName("lc-cp-prepare"), byName("lc-w1-prepare"))).toBe(true);
        expect(overlap(byName("lc-w1-prepare"), byName("lc-w2-prepare"))).toBe(true);
        expect(overlap(byName("lc-w1-join"), byName("lc-w2-join")) || overlap(byName("lc-w1-token"), byName("lc-w2-token"))).toBe(true);
    });

    test("the stand-in packages came from the local repository, pinned and held", async () => {
        for (const h of sb.hosts) {
            const r = await sb.ssh(h, "root", "dpkg-query -W -f='${Package}=${Version}\\n' kubeadm kubelet kubectl containerd.io; apt-mark showhold; cat /etc/apt/sources.list.d/kubeadm-pulumi-local.list");
            expect(r.stdout).toContain("kubeadm=1.36.4-1.1");
            expect(r.stdout).toContain("containerd.io=2.2.6-1~debian.12~bookworm");
            expect(r.stdout).toMatch(/kubelet\nkubectl|kubeadm\nkubectl|kubectl/);
            expect(r.stdout).toContain(`deb [trusted=yes] http://${sb.gateway}:${repo.port}/ ./`);
        }
    });

    test("init: kubeadm validated the program's config and ran init with the program's CA, output kept off the logs", async () => {
        const log = (await sb.ssh(cp, "root", "cat /var/log/kubeadm-pulumi-standins/kubeadm.log")).stdout;
        const calls = log.trim().split("\n").map((l) => JSON.parse(l) as { argv: string[]; exit: number });
        const validate = calls.find((c) => c.argv.includes("validate"));
        const init = calls.find((c) => c.argv[1] === "init");
        expect(validate?.exit).toBe(0);
        expect(init?.argv).toEqual(expect.arrayContaining(["--skip-token-print", "--skip-certificate-key-print"]));
        expect(init?.exit).toBe(0);
        const caOnHost = (await sb.ssh(cp, "root", "cat /etc/kubernetes/pki/ca.crt")).stdout;
        expect(caOnHost).toBe(testPki().caCert);
        const keyMode = (await sb.ssh(cp, "root", "stat -c %a /etc/kubernetes/pki/ca.key /etc/kubernetes/pki/sa.key")).stdout.trim().split("\n");
        expect(keyMode).toEqual(["600", "600"]);
        expect(exec(up.byName("lc-cp-init")).stdout).toMatch(/initialised: lc-cp is the first control plane/);
    });

    test("each worker joined with its own token, which node-ready deleted once the node registered", async () => {
        for (const w of [w1, w2]) {
            expect((await sb.ssh(w, "root", "test -f /etc/kubernetes/kubelet.conf && systemctl is-active kubelet")).stdout.trim()).toBe("active");
            expect(exec(up.byName(`${w.name}-node`)).stdout).toMatch(/deleted bootstrap token [a-z0-9]{6}/);
        }
        const secrets = await sb.ssh(cp, "root", "ls /var/lib/kubeadm-pulumi-standins/api/secrets/kube-system/ 2>/dev/null | wc -l");
        expect(secrets.stdout.trim()).toBe("0");
        const kubectl = (await sb.ssh(cp, "root", "cat /var/log/kubeadm-pulumi-standins/kubectl.log")).stdout;
        expect(kubectl).toContain("--server-side");
        expect(kubectl).toContain("node-role.kubernetes.io/worker=");
    });

    test("no secret reached any log, output or file outside its place", async () => {
        const pki = testPki();
        const keyLine = pki.caKey.trim().split("\n")[1];
        const tokenSecrets = up.resources.filter((r) => r.type === "random:index:RandomPassword")
            .map((r) => SECRET_MARKERS.tokenSecret(r.name));
        expect(tokenSecrets).toHaveLength(2);
        const outputs = executions.map((e) => e.stdout + e.stderr).join("\n");
        expect(outputs).not.toContain(keyLine);
        for (const t of tokenSecrets) expect(outputs).not.toContain(t);
        for (const h of sb.hosts) {
            const logs = (await sb.ssh(h, "root", "cat /var/log/kubeadm-pulumi-standins/*.log /var/log/kubeadm-pulumi/*.log 2>/dev/null; journalctl --no-pager -q 2>/dev/null | tail -n 2000")).stdout;
            expect(logs).not.toContain(keyLine);
            for (const t of tokenSecrets) expect(logs).not.toContain(t);
            // No secret left in a temporary file.
            expect((await sb.ssh(h, "root", "ls -d /run/kubeadm-pulumi.* 2>/dev/null | wc -l")).stdout.trim()).toBe("0");
        }
    });

    test("re-running every step changes nothing: prepare reports unchanged, files and units are identical", async () => {
        const snapshot = (h: SandboxHost) => sb.ssh(h, "root", [
            "sha256sum /etc/containerd/config.toml /etc/crictl.yaml /etc/sysctl.d/99-kubeadm-pulumi.conf /etc/modules-load.d/kubeadm-pulumi.conf /etc/apt/sources.list.d/*.list /etc/fstab /etc/kubernetes/*.conf /var/lib/kubelet/config.yaml 2>/dev/null",
            "for u in containerd kubelet; do echo $u $(systemctl is-enabled $u) $(systemctl is-active $u) $(systemctl show -p MainPID --value $u); done",
            "dpkg-query -W -f='${Package}=${Version} ${Status}\\n' kubeadm kubelet kubectl containerd.io",
        ].join("; "));
        const before = await Promise.all(sb.hosts.map((h) => snapshot(h)));
        for (const name of ["lc-cp-prepare", "lc-w1-prepare", "lc-w2-prepare"]) {
            const out = await execute(call(up.byName(name)));
            const lines = out.stdout.trim().split("\n");
            expect(lines.filter((l) => !/: unchanged$/.test(l))).toEqual([]);
            expect(lines.length).toBeGreaterThanOrEqual(8);
        }
        expect((await execute(call(up.byName("lc-cp-init")))).stdout).toMatch(/already initialised/);
        expect((await execute(call(up.byName("lc-w1-join")))).stdout).toMatch(/already joined/);
        const after = await Promise.all(sb.hosts.map((h) => snapshot(h)));
        expect(after.map((r) => r.stdout)).toEqual(before.map((r) => r.stdout));
    });

    test("prepare waits for a dpkg lock held by another process, names it, then completes", async () => {
        // Hold dpkg's frontend lock the way apt does (an fcntl write lock on
        // /var/lib/dpkg/lock-frontend; struct flock as on x86_64), for 12 s.
        const holder = [
            "use Fcntl;",
            "open(my $f, '>>', '/var/lib/dpkg/lock-frontend') or die \"open: $!\";",
            "my $lock = pack('s s x4 q q i x4', F_WRLCK, 0, 0, 0, 0);",
            "fcntl($f, F_SETLKW, $lock) or die \"lock: $!\";",
            "sleep 12;",
        ].join("\n");
        const hold = await sb.ssh(w1, "root", "cat > /run/hold-dpkg.pl && systemd-run --unit kp-hold-dpkg perl /run/hold-dpkg.pl && sleep 1 && grep -c POSIX /proc/locks", holder + "\n");
        expect({ code: hold.code, out: hold.stdout.trim(), err: hold.stderr }).toEqual({ code: 0, out: "1", err: expect.any(String) });
        const t0 = Date.now();
        const out = await execute(call(up.byName("lc-w1-prepare")));
        expect(Date.now() - t0).toBeGreaterThan(8000);
        expect(out.stderr).toMatch(/waiting for the package manager lock, held by: \d+ \(perl\)/);
        expect(out.stdout).toMatch(/images: unchanged/);
    });

    test("an SSH connection dropped in the middle of prepare: the next run completes", async () => {
        // Undo part of what prepare did on w2 so it has real work to do, and
        // hold the dpkg lock so the step is surely still running when the
        // connection is cut (after 3 s), in the middle of the step.
        expect(await sb.ssh(w2, "root", "rm -f /etc/containerd/config.toml /etc/sysctl.d/99-kubeadm-pulumi.conf /etc/crictl.yaml && apt-mark unhold kubectl >/dev/null && apt-get -y -q remove kubectl >/dev/null")).toMatchObject({ code: 0 });
        const hold = await sb.ssh(w2, "root", "cat > /run/hold-dpkg.pl && systemd-run --unit kp-hold-dpkg2 perl /run/hold-dpkg.pl && sleep 1 && grep -c POSIX /proc/locks",
            ["use Fcntl;", "open(my $f, '>>', '/var/lib/dpkg/lock-frontend') or die;", "my $lock = pack('s s x4 q q i x4', F_WRLCK, 0, 0, 0, 0);",
                "fcntl($f, F_SETLKW, $lock) or die;", "sleep 8;"].join("\n") + "\n");
        expect(hold.code).toBe(0);
        const c = call(up.byName("lc-w2-prepare"));
        const cut = await sb.ssh(w2, c.connection.user, c.create, c.stdin, 3000);
        expect(cut.code).toBe(124); // cut by the client's timeout, mid-step
        expect(cut.stdout).not.toMatch(/packages:/);
        const out = await execute(c);
        expect(out.stdout).toMatch(/packages: changed/);
        expect(out.stdout).toMatch(/containerd: changed/);
        const again = await execute(c);
        expect(again.stdout.trim().split("\n").filter((l) => !/: unchanged$/.test(l))).toEqual([]);
    });

    test("teardown: drain -> reset -> forget, first control plane last, and no residue on any host", async () => {
        // Residue a running node leaves (the stand-in kubelet makes it): check it is there first.
        const residueCheck = [
            "for p in /etc/kubernetes /var/lib/kubelet /var/lib/etcd /etc/cni/net.d /var/lib/cni; do [ -e $p ] && echo path $p; done",
            "for i in cni0 flannel.1 kube-ipvs0; do ip link show $i >/dev/null 2>&1 && echo link $i; done",
            "iptables-save 2>/dev/null | grep -E '^(:|-A )(KUBE-|CNI-|FLANNEL)' | sed 's/^/iptables /'",
            "nft list tables 2>/dev/null | grep -E 'kube-proxy|cilium' | sed 's/^/nft /'",
            "grep ' /var/lib/kubelet' /proc/mounts | sed 's/^/mount /'",
            "systemctl is-active kubelet | sed 's/^/kubelet /'",
            "true",
        ].join("; ");
        const residueBefore = (await sb.ssh(w1, "root", residueCheck)).stdout;
        expect(residueBefore).toContain("path /etc/kubernetes");
        expect(residueBefore).toContain("link cni0");
        expect(residueBefore).toContain("iptables :KUBE-");

        // Delete order: reverse of the dependency order (what `pulumi destroy` does).
        const deletions = up.commands().filter((c) => reveal<{ delete?: string }>(c.inputs).delete);
        const order: Recorded[] = [];
        const remaining = new Set(deletions.map((d) => d.name));
        while (remaining.size > 0) {
            // Delete a resource once nothing that depends on it remains.
            const next = deletions.filter((d) => remaining.has(d.name) &&
                ![...remaining].some((o) => up.dependencies(o).has(d.name)));
            expect(next.length).toBeGreaterThan(0);
            for (const d of next) {
                remaining.delete(d.name);
                order.push(d);
            }
        }
        const names = order.map((o) => o.name);
        expect(names[names.length - 1]).toBe("lc-cp-init");
        for (const w of ["lc-w1", "lc-w2"]) {
            expect(names.indexOf(`${w}-node`)).toBeLessThan(names.indexOf(`${w}-join`));
            expect(names.indexOf(`${w}-join`)).toBeLessThan(names.indexOf(`${w}-token`));
        }
        for (const d of order) {
            const out = await execute(call(d, "delete"));
            if (d.name.endsWith("-join") || d.name.endsWith("-init")) expect(out.stdout).toMatch(/reset lc-/);
        }
        for (const h of sb.hosts) {
            const residue = (await sb.ssh(h, "root", residueCheck)).stdout.trim().split("\n").filter((l) => l && l !== "kubelet inactive");
            expect({ host: h.name, residue }).toEqual({ host: h.name, residue: [] });
            // Packages stay, held; the host's own firewall rules stay.
            expect((await sb.ssh(h, "root", "dpkg-query -W -f='${Status}' kubeadm")).stdout).toBe("hold ok installed");
        }
        // Reset is idempotent: a second teardown finds nothing to do and still succeeds.
        for (const d of order) await execute(call(d, "delete"));
    });
});
