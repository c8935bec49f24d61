/**
 * The OS matrix on real hosts: Debian 13 (trixie) hosts run the program's own
 * steps over real SSH, from preflight through prepare, init and join (with
 * the STAND-IN Kubernetes packages of tests/hosts/standins, as the lifecycle
 * test does) to teardown; a Debian 12 (bookworm) host shows preflight's OS
 * detection, for its own os-release and for an unsupported one.
 *
 * Real: Debian 13 and 12 with systemd, sshd, sudo, apt/dpkg 3.0 and 2.6, the
 * scripts. Stand-ins: the Kubernetes packages, and on one trixie host a
 * firewall-cmd stand-in (tests/os-stubs/firewall-cmd, not firewalld: Debian
 * does not run firewalld by default and sandbox hosts reach no package
 * mirror) so that prepare's firewalld branch and teardown's closing run on a
 * real host through the real step commands. Ubuntu and the RHEL family are
 * not booted anywhere here (docs/os-matrix.md).
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as path from "path";
import { parseFacts } from "../../components/facts";
import { RawConfig } from "../../components/config";
import { CommandCall, EngineState, Run, destroy, providerError, rawConfig, reveal, runProgram } from "../harness";
import { tier } from "../tier";
import { residueOf } from "./residue";
import { Sandbox, SandboxHost, sandboxAvailable, startSandbox } from "./sandbox";
import { serveDirectory } from "./serve";

const sandbox = tier("sandbox", "tests/hosts/os.test.ts", sandboxAvailable());
const REPO_ROOT = path.resolve(__dirname, "../..");


interface Execution { name: string; field: string; host: string; code: number; stdout: string; stderr: string }

sandbox.describe("Debian 13 hosts: preflight, prepare, init, join and teardown by the program's steps", () => {
    let sb: Sandbox;
    let repo: { server: http.Server; port: number };
    let cp: SandboxHost, w: SandboxHost;
    let raw: RawConfig;
    let up: Run;
    let state: EngineState = new Map();
    const executions: Execution[] = [];

    async function execute(call: CommandCall): Promise<{ stdout: string; stderr: string }> {
        const host = sb.hosts.find((h) => h.address === call.connection.host)!;
        const r = await sb.ssh(host, call.connection.user, call.command, call.stdin, 600000);
        executions.push({ name: call.name, field: call.field, host: host.name, code: r.code, stdout: r.stdout, stderr: r.stderr });
        if (r.code !== 0) throw new Error(providerError(call.command, r.code, r.stdout + r.stderr));
        return { stdout: r.stdout, stderr: r.stderr };
    }
    const exec = (name: string) => [...executions].reverse().find((e) => e.name === name)!;
    const sh = async (h: SandboxHost, command: string) => (await sb.ssh(h, "root", command)).stdout;

    beforeAll(async () => {
        sandbox.require();
        const out = execFileSync("bash", [path.join(REPO_ROOT, "tests/hosts/standins/build.sh"), "1.36.4", "2.2.6"], { encoding: "utf8" });
        const repoDir = out.trim().split("\n").pop()!;
        sb = await startSandbox(["os13-cp", "os13-w"], { release: "trixie" });
        [cp, w] = sb.hosts;
        repo = await serveDirectory(repoDir, sb.gateway);
        // the worker "runs firewalld" (a stand-in answering like firewall-cmd; see the header)
        const stub = fs.readFileSync(path.join(REPO_ROOT, "tests/os-stubs/firewall-cmd"), "utf8");
        const put = await sb.ssh(w, "root", "install -m 0755 /dev/stdin /usr/local/sbin/firewall-cmd && mkdir -p /usr/local/sbin/fw/permanent && touch /usr/local/sbin/fw/running && echo 22/tcp > /usr/local/sbin/fw/permanent/public.port", stub);
        expect(put.code).toBe(0);
        raw = rawConfig({
            hosts: [
                { name: cp.name, address: cp.address, roles: ["control-plane"] },
                { name: w.name, address: w.address, roles: ["worker"] },
            ],
            ssh: { user: "kube", privateKey: sb.privateKey },
            kubernetesVersion: "1.36.4",
            packages: { localRepository: { apt: `http://${sb.gateway}:${repo.port}/ ./` } },
            // sandbox hosts share this machine's cgroup v1 (see tests/hosts/lifecycle.test.ts)
            preflight: { ignore: ["cgroup", "disk"] },
            // the stand-ins have no API server for the add-ons (and the Gateway API CRDs are not reachable)
            addons: { ingress: false, dashboard: false, metricsServer: false, smokeTest: false },
        });
        up = await runProgram(raw, { execute, state, checkReachability: true });
        state = up.state;
    }, 20 * 60 * 1000);

    afterAll(async () => {
        repo?.server.close();
        await sb?.stop();
    }, 60000);

    test("the hosts run Debian 13 (trixie), with its systemd and apt", async () => {
        for (const h of [cp, w]) {
            const r = await sh(h, ". /etc/os-release; echo $ID $VERSION_ID $VERSION_CODENAME; systemctl --version | head -n1 | cut -d' ' -f1,2; apt-get --version | head -n1 | cut -d' ' -f1,2");
            expect(r.split("\n")[0]).toBe("debian 13 trixie");
            expect(r).toMatch(/^systemd 25[7-9]/m);
            expect(r).toMatch(/^apt 3\./m);
        }
    });

    test("up: every step ran once and none failed", () => {
        expect(up.failures.map((f) => `${f.name}: ${f.error.message.split("\n").slice(-8).join("\n")}`)).toEqual([]);
        expect(up.errors).toEqual([]);
        expect(executions.map((e) => `${e.name}:${e.field}`).sort()).toEqual(up.commands().map((c) => `${c.name}:create`).sort());
        expect(executions.filter((e) => e.code !== 0)).toEqual([]);
    });

    test("preflight identified Debian 13 as the debian family, with no OS problem", () => {
        for (const h of [cp, w]) {
            const e = exec(`${h.name}-preflight`);
            expect(parseFacts(h.name, e.stdout).os).toEqual({ id: "debian", versionId: "13", family: "debian" });
            expect(e.stderr).not.toMatch(/operating system/);
        }
    });

    test("prepare took the apt path on trixie: packages from the repository, pinned and held; AppArmor and firewall reported", async () => {
        for (const h of [cp, w]) {
            const out = exec(`${h.name}-prepare`).stdout;
            expect(out).toMatch(/^packages: changed \(containerd\.io \(none\) -> 2\.2\.6-1~debian\.12~bookworm;kubelet \(none\) -> 1\.36\.4-1\.1;/m);
            expect(out).toContain("apparmor: unchanged\n");
            expect(out).not.toMatch(/^selinux:/m);
            const r = await sh(h, "dpkg-query -W -f='${Package}=${Version} ${db:Status-Abbrev}\\n' kubeadm kubelet kubectl containerd.io; apt-mark showhold");
            expect(r).toContain("kubeadm=1.36.4-1.1 hi");
            expect(r.trim().split("\n").slice(-4).sort()).toEqual(["containerd.io", "kubeadm", "kubectl", "kubelet"]);
        }
        // the control plane runs no firewalld: nothing opened
        expect(exec(`${cp.name}-prepare`).stdout).toContain("firewall: unchanged\n");
    });

    test("where firewalld runs, prepare opened the worker's ports and trusted the pod and service networks, and recorded only those", async () => {
        expect(exec(`${w.name}-prepare`).stdout).toContain(
            "firewall: changed (opened port 10250/tcp;opened port 10256/tcp;opened port 30000-32767/tcp;opened port 8472/udp;opened source 10.244.0.0/16;opened source 10.96.0.0/12)\n",
        );
        expect(await sh(w, "sort /usr/local/sbin/fw/permanent/public.port")).toBe("10250/tcp\n10256/tcp\n22/tcp\n30000-32767/tcp\n8472/udp\n");
        expect(await sh(w, "sort /usr/local/sbin/fw/runtime/trusted.source")).toBe("10.244.0.0/16\n10.96.0.0/12\n");
        expect(await sh(w, "cat /var/lib/kubeadm-pulumi/firewalld-opened")).toBe(
            "port 10250/tcp\nport 10256/tcp\nport 30000-32767/tcp\nport 8472/udp\nsource 10.244.0.0/16\nsource 10.96.0.0/12\n");
    });

    test("init and join worked on trixie: both nodes joined, kubelet active", async () => {
        for (const h of [cp, w]) {
            expect((await sh(h, "test -f /etc/kubernetes/kubelet.conf && systemctl is-active kubelet")).trim()).toBe("active");
        }
        expect(exec(`${w.name}-join`).stdout).toMatch(/joined/);
    });

    test("prepare run again (its update command, or create where it has none) changes nothing on trixie", async () => {
        for (const h of [cp, w]) {
            const i = reveal<{ create: string; update?: string; connection: { user: string } }>(up.byName(`${h.name}-prepare`).inputs);
            const r = await sb.ssh(h, i.connection.user, i.update ?? i.create);
            expect({ host: h.name, code: r.code, err: r.code === 0 ? "" : r.stderr.slice(-500) }).toEqual({ host: h.name, code: 0, err: "" });
            const lines = r.stdout.trim().split("\n");
            expect(lines.filter((l) => !/: unchanged$/.test(l))).toEqual([]);
            expect(lines).toEqual(expect.arrayContaining(["apparmor: unchanged", "firewall: unchanged", "packages: unchanged"]));
        }
        expect(await sh(w, "wc -l < /var/lib/kubeadm-pulumi/firewalld-opened")).toBe("6\n");
    });

    test("destroy: no residue, and the worker's firewall has exactly what it had before (the user's port 22)", async () => {
        await destroy(state, execute);
        expect(executions.filter((e) => e.code !== 0)).toEqual([]);
        expect(exec(`${w.name}-join`).stdout).toMatch(/firewalld: closed port 8472\/udp \(opened by prepare\)/);
        for (const h of [cp, w]) expect({ host: h.name, residue: await residueOf(sb, h) }).toEqual({ host: h.name, residue: [] });
        expect(await sh(w, "cat /usr/local/sbin/fw/permanent/public.port /usr/local/sbin/fw/runtime/public.port; cat /usr/local/sbin/fw/*/trusted.source")).toBe("22/tcp\n");
        expect(await sh(w, "ls /var/lib/kubeadm-pulumi 2>&1")).toMatch(/No such file/);
    });
});

sandbox.describe("Debian 12 host: preflight's OS detection", () => {
    let sb: Sandbox;
    let h: SandboxHost;
    let raw: RawConfig;

    beforeAll(async () => {
        sandbox.require();
        sb = await startSandbox(["os12-a"]);
        [h] = sb.hosts;
        raw = rawConfig({ hosts: [{ name: h.name, address: h.address, roles: ["control-plane"] }], ssh: { user: "kube", privateKey: sb.privateKey }, preflight: { ignore: ["cgroup", "disk"] } });
    }, 300000);

    afterAll(async () => {
        await sb?.stop();
    }, 60000);

    async function preflight() {
        const run = await runProgram(raw);
        const scripts = reveal<{ create: string; stdin: string }>(run.byName(`${h.name}-scripts`).inputs);
        expect((await sb.ssh(h, "root", scripts.create, scripts.stdin)).code).toBe(0);
        const { create } = reveal<{ create: string }>(run.byName(`${h.name}-preflight`).inputs);
        return sb.ssh(h, "kube", create);
    }

    test("bookworm is Debian 12, of the debian family", async () => {
        const r = await preflight();
        expect(r.code).toBe(0);
        expect(parseFacts(h.name, r.stdout).os).toEqual({ id: "debian", versionId: "12", family: "debian" });
    });

    test("the same host showing Ubuntu 20.04's os-release is refused, naming it and the supported list", async () => {
        const fake = 'NAME="Ubuntu"\\nVERSION_ID="20.04"\\nID=ubuntu\\nID_LIKE=debian\\nPRETTY_NAME="Ubuntu 20.04.6 LTS"\\n';
        expect((await sb.ssh(h, "root", `printf '${fake}' > /run/fake-os-release && mount --bind /run/fake-os-release /etc/os-release`)).code).toBe(0);
        try {
            const r = await preflight();
            expect(r.code).toBe(1);
            expect(r.stderr).toContain(
                "  - unsupported operating system Ubuntu 20.04.6 LTS (ID=ubuntu VERSION_ID=20.04); supported: Debian 12/13, Ubuntu 22.04/24.04/26.04, or RHEL/Rocky/AlmaLinux/CentOS Stream 9/10. Fix: ",
            );
        } finally {
            await sb.ssh(h, "root", "umount /etc/os-release");
        }
    });
});
