/**
 * The sandbox harness itself: two real Debian 12 hosts booted with
 * systemd-nspawn, reached over real ssh. Skipped (with a warning) where the
 * harness cannot run, except under CI=true where that is a failure.
 */
import { tier } from "../tier";
import { Sandbox, SandboxHost, sandboxAvailable, startSandbox } from "./sandbox";

const sandbox = tier("sandbox", "tests/hosts/sandbox.test.ts", sandboxAvailable());

sandbox.describe("sandbox hosts", () => {
    let sb: Sandbox | undefined;
    let a: SandboxHost;
    let b: SandboxHost;

    beforeAll(async () => {
        sandbox.require();
        const t0 = Date.now();
        sb = await startSandbox(["sbt-a", "sbt-b"]);
        [a, b] = sb.hosts;
        console.log(
            `[sandbox] 2 hosts up in ${((Date.now() - t0) / 1000).toFixed(1)} s ` +
                `(${Object.entries(sb.timings)
                    .map(([k, v]) => `${k} ${v.toFixed(1)} s`)
                    .join(", ")}); states: ${sb.hosts.map((h) => `${h.name}=${h.systemState}`).join(", ")}`,
        );
    }, 240000);

    afterAll(async () => {
        const t0 = Date.now();
        await sb?.stop();
        if (sb) console.log(`[sandbox] stopped in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    }, 60000);

    const box = () => {
        if (!sb) throw new Error("sandbox did not start");
        return sb;
    };

    test("fails loudly under CI when the sandbox cannot run", () => {
        expect(sandbox.availability).toEqual({ ok: true });
    });

    test("each host's hostname is its name", async () => {
        for (const h of box().hosts) {
            const r = await box().ssh(h, "root", "hostname");
            expect(r).toMatchObject({ code: 0 });
            expect(r.stdout.trim()).toBe(h.name);
        }
    });

    test("kube has passwordless sudo", async () => {
        for (const h of box().hosts) {
            const r = await box().ssh(h, "kube", "sudo -n true && sudo -n id -u");
            expect(r.code).toBe(0);
            expect(r.stdout.trim()).toBe("0");
        }
    });

    test("nosudo has no sudo", async () => {
        const r = await box().ssh(a, "nosudo", "id -un; sudo -n true");
        expect(r.stdout.trim()).toBe("nosudo");
        expect(r.code).not.toBe(0);
    });

    test("the hosts reach each other's sshd, by address and by name", async () => {
        for (const [from, to] of [
            [a, b],
            [b, a],
        ]) {
            const r = await box().ssh(
                from,
                "kube",
                `timeout 5 bash -c 'exec 3<>/dev/tcp/${to.address}/22 && head -c 4 <&3' && ` +
                    `timeout 5 bash -c 'exec 3<>/dev/tcp/${to.name}/22 && head -c 4 <&3'`,
            );
            expect(r).toMatchObject({ code: 0, stdout: "SSH-SSH-" });
        }
    });

    test("stdin reaches a remote cat", async () => {
        const input = "line one\nline 'two' with $dollar and \"quotes\"\n" + "x".repeat(100000) + "\n";
        const r = await box().ssh(b, "kube", "cat", input);
        expect(r.code).toBe(0);
        expect(r.stdout).toBe(input);
    });

    test("exit codes and stderr come back", async () => {
        const r = await box().ssh(a, "kube", "echo out; echo err >&2; exit 7");
        expect(r).toEqual({ code: 7, stdout: "out\n", stderr: "err\n" });
    });

    test("systemd is booted and machine ids differ", async () => {
        const ids: string[] = [];
        for (const h of box().hosts) {
            expect(["running", "degraded"]).toContain(h.systemState);
            const r = await box().ssh(h, "root", "cat /etc/machine-id; systemctl is-active ssh");
            expect(r.code).toBe(0);
            const [id, active] = r.stdout.trim().split("\n");
            expect(id).toMatch(/^[0-9a-f]{32}$/);
            expect(active).toBe("active");
            ids.push(id);
        }
        expect(new Set(ids).size).toBe(ids.length);
    });

    test("facts of these hosts: no product_uuid; cgroup file system reported", async () => {
        const r = await box().ssh(
            a,
            "root",
            "test -e /sys/class/dmi/id/product_uuid && echo uuid=present || echo uuid=absent; " +
                "echo cgroupfs=$(stat -fc %T /sys/fs/cgroup); echo nproc=$(nproc); " +
                "echo swap=$(awk 'NR>1' /proc/swaps | wc -l); test -d /proc/sys/net/bridge && echo bridge=yes || echo bridge=no",
        );
        expect(r.code).toBe(0);
        console.log(`[sandbox] facts on ${a.name}: ${r.stdout.trim().replace(/\n/g, " ")}`);
        expect(r.stdout).toContain("uuid=absent");
        expect(r.stdout).toMatch(/cgroupfs=(tmpfs|cgroup2fs)/);
    });
});
