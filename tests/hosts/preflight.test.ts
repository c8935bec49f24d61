/**
 * Preflight on real hosts: the program's own rendered preflight commands (from
 * a mock run of the real program for these hosts) run over real SSH on booted
 * Debian hosts, with faults injected into the hosts. Each fault must show up
 * with its message, all of them in one run.
 */
import { checkAgainstEarlier, fleetProblems, parseFacts } from "../../components/facts";
import { RawConfig } from "../../components/config";
import { Run, rawConfig, reveal, runProgram } from "../harness";
import { tier } from "../tier";
import { Sandbox, SandboxHost, sandboxAvailable, startSandbox } from "./sandbox";
import * as pulumi from "@pulumi/pulumi";

const sandbox = tier("sandbox", "tests/hosts/preflight.test.ts", sandboxAvailable());

sandbox.describe("preflight on real hosts", () => {
    let sb: Sandbox;
    let cp: SandboxHost;
    let worker: SandboxHost;

    beforeAll(async () => {
        sandbox.require();
        sb = await startSandbox(["pf-cp", "pf-worker"]);
        [cp, worker] = sb.hosts;
    }, 300000);

    afterAll(async () => {
        await sb?.stop();
    }, 60000);

    /** The program's config for these two hosts. */
    function config(overrides: Partial<RawConfig> = {}, user = "kube"): RawConfig {
        return rawConfig({
            hosts: [
                { name: cp.name, address: cp.address, roles: ["control-plane"] },
                { name: worker.name, address: worker.address, roles: ["worker"] },
            ],
            ssh: { user, privateKey: sb.privateKey },
            ...overrides,
        });
    }

    /** Render the program for `raw` and run one host's preflight command for real (after its scripts step, as the program orders them). */
    async function preflight(raw: RawConfig, host: SandboxHost) {
        const run: Run = await runProgram(raw);
        const scripts = reveal<{ create: string; stdin: string }>(run.byName(`${host.name}-scripts`).inputs);
        const installed = await sb.ssh(host, "root", scripts.create, scripts.stdin);
        expect({ code: installed.code, err: installed.stderr.slice(-300) }).toMatchObject({ code: 0 });
        const cmd = run.byName(`${host.name}-preflight`);
        const { create, connection } = reveal<{ create: string; connection: { user: string } }>(cmd.inputs);
        return sb.ssh(host, connection.user, create);
    }

    /** Problem lines ("  - ...") of a failed preflight. */
    const problemLines = (stderr: string) => stderr.split("\n").filter((l) => l.startsWith("  - "));

    test("a clean sandbox host fails only the genuine cgroup v1 check, with its fix", async () => {
        const r = await preflight(config(), cp);
        expect(r.code).toBe(1);
        expect(r.stdout).toBe("");
        expect(r.stderr).toContain(`preflight failed on host ${cp.name}:`);
        const lines = problemLines(r.stderr);
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatch(/does not use cgroup v2 .*kubelet 1\.35 and newer refuse to run on cgroup v1\. Fix: /);
    });

    test("with preflight.ignore [cgroup] it passes and prints the host's facts", async () => {
        const r = await preflight(config({ preflight: { ignore: ["cgroup", "disk"] } }), worker);
        expect(r.code).toBe(0);
        expect(r.stderr).toContain("ignored by preflight.ignore (cgroup)");
        const facts = parseFacts(worker.name, r.stdout);
        expect(facts).toMatchObject({ node: worker.name, os: { id: "debian", versionId: "12", family: "debian" }, productUuid: "" });
        expect(facts.macs.length).toBeGreaterThan(0);
    });

    test("hostname, taken ports and a missing command are all reported in one run", async () => {
        const setup = [
            // (and resolvable, or sudo waits for DNS on every call)
            "hostname wrong-name && echo '127.0.1.1 wrong-name' >> /etc/hosts",
            "systemd-run --unit kp-hold-6443 /usr/bin/systemd-socket-activate -l 6443 /bin/cat",
            "systemd-run --unit kp-hold-10250 /usr/bin/systemd-socket-activate -l 10250 /bin/cat",
            "mv /usr/bin/nsenter /usr/bin/nsenter.off",
            "sleep 1",
        ].join(" && ");
        const undo = [
            `hostname ${cp.name} && sed -i '/ wrong-name$/d' /etc/hosts`,
            "systemctl stop kp-hold-6443 kp-hold-10250",
            "mv /usr/bin/nsenter.off /usr/bin/nsenter",
        ].join("; ");
        expect(await sb.ssh(cp, "root", setup)).toMatchObject({ code: 0 });
        try {
            const r = await preflight(config(), cp);
            expect(r.code).toBe(1);
            expect(r.stdout).toBe("");
            const text = problemLines(r.stderr).join("\n");
            expect(text).toContain(`the hostname is 'wrong-name' but the stack config calls this host '${cp.name}'`);
            expect(text).toMatch(/TCP port 6443 is already in use.*Fix: /);
            expect(text).toMatch(/TCP port 10250 is already in use.*Fix: /);
            expect(text).toMatch(/the command 'nsenter' is missing.*Fix: /);
            expect(text).toMatch(/cgroup v2/);
            expect(problemLines(r.stderr)).toHaveLength(5);
        } finally {
            await sb.ssh(cp, "root", undo);
        }
    });

    test("a user without passwordless sudo gets the sudoers fix before anything runs", async () => {
        const r = await preflight(config({}, "nosudo"), worker);
        expect(r.code).toBe(1);
        expect(r.stderr).toContain("user nosudo cannot run sudo without a password on this host");
        expect(r.stderr).toContain("NOPASSWD");
        expect(r.stderr).not.toContain("preflight failed");
    });

    test("swap on is reported (as a warning: prepare turns it off)", async () => {
        // A container cannot enable swap (it is the kernel's); show preflight a
        // /proc/swaps with an active swap file instead.
        const fake = "Filename\\tType\\tSize\\tUsed\\tPriority\\n/swapfile file 1048572 0 -2\\n";
        expect(await sb.ssh(worker, "root", `printf '${fake}' > /run/fake-swaps && mount --bind /run/fake-swaps /proc/swaps`)).toMatchObject({ code: 0 });
        try {
            const r = await preflight(config({ preflight: { ignore: ["cgroup", "disk"] } }), worker);
            expect(r.code).toBe(0);
            expect(r.stderr).toMatch(/swap is on: prepare will turn it off/);
            expect(parseFacts(worker.name, r.stdout).swapOn).toBe(true);
        } finally {
            await sb.ssh(worker, "root", "umount /proc/swaps");
        }
    });

    test("two hosts with the same MAC address: the program's cross-host check names both", async () => {
        // Give the worker a second NIC with the control plane's MAC, as a cloned
        // VM would have (the same MAC on eth0 would break the shared bridge, and
        // with it SSH, exactly as it breaks real networks).
        const cpMac = (await sb.ssh(cp, "root", "ip -o link show eth0 | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2")).stdout.trim();
        expect(cpMac).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
        expect(await sb.ssh(worker, "root", `ip link add clone0 type veth peer name clone1 && ip link set clone0 address ${cpMac}`)).toMatchObject({ code: 0 });
        try {
            const raw = config({ preflight: { ignore: ["cgroup", "disk"] } });
            const outs = [await preflight(raw, cp), await preflight(raw, worker)];
            expect(outs.map((o) => o.code)).toEqual([0, 0]);
            const facts = [parseFacts(cp.name, outs[0].stdout), parseFacts(worker.name, outs[1].stdout)];
            const problems = fleetProblems(facts);
            expect(problems).toHaveLength(1);
            expect(problems[0].nodes).toEqual([cp.name, worker.name]);
            expect(problems[0].message).toContain(`share MAC address ${cpMac}`);
            // The gate the program puts before the worker's prepare step fails with that message.
            const gate = checkAgainstEarlier(pulumi.output(facts[1]), [pulumi.output(facts[0])]) as unknown as {
                promise(): Promise<unknown>; isKnown: Promise<boolean>; isSecret: Promise<boolean>;
            };
            gate.isKnown.catch(() => undefined);
            gate.isSecret.catch(() => undefined);
            await expect(gate.promise()).rejects.toThrow(`preflight failed on host ${worker.name}`);
        } finally {
            await sb.ssh(worker, "root", "ip link delete clone0");
        }
    });

    test("two hosts with the same product_uuid (cloned VMs): the program's cross-host check names both", async () => {
        // Sandbox hosts have no DMI data (/sys/class/dmi does not exist on this
        // machine). Show each host a /sys/class with a dmi/id/product_uuid, as
        // a cloned VM's firmware would, the same value on both.
        const uuid = "4c4c4544-0042-3510-8057-b7c04f4e3432";
        const fake = `mount -t tmpfs kp-fake-class /sys/class && mkdir -p /sys/class/dmi/id && echo ${uuid.toUpperCase()} > /sys/class/dmi/id/product_uuid`;
        for (const h of [cp, worker]) expect(await sb.ssh(h, "root", fake)).toMatchObject({ code: 0 });
        try {
            const raw = config({ preflight: { ignore: ["cgroup", "disk"] } });
            const outs = [await preflight(raw, cp), await preflight(raw, worker)];
            expect(outs.map((o) => o.code)).toEqual([0, 0]);
            const facts = [parseFacts(cp.name, outs[0].stdout), parseFacts(worker.name, outs[1].stdout)];
            expect(facts.map((f) => f.productUuid)).toEqual([uuid, uuid]);
            const problems = fleetProblems(facts);
            expect(problems.map((p) => p.message)).toEqual([expect.stringContaining(`hosts ${cp.name}, ${worker.name} share product_uuid ${uuid}`)]);
        } finally {
            for (const h of [cp, worker]) await sb.ssh(h, "root", "umount /sys/class");
        }
    });

    test("without DMI data (containers) product_uuid is reported empty and never counted as a duplicate", async () => {
        const raw = config({ preflight: { ignore: ["cgroup", "disk"] } });
        const facts = [parseFacts(cp.name, (await preflight(raw, cp)).stdout), parseFacts(worker.name, (await preflight(raw, worker)).stdout)];
        expect(facts.map((f) => f.productUuid)).toEqual(["", ""]);
        expect(fleetProblems(facts)).toEqual([]);
    });
});
