/**
 * Lifecycle under the harness's model of the Pulumi engine (tests/harness.ts),
 * without hosts: what a preview shows, which config changes a live cluster
 * refuses (before anything runs) and which it takes, replacements, the order
 * a failure stops, the pod-network options. The same sequences run against
 * real hosts in tests/hosts/lifecycle.test.ts.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { RawConfig } from "../components/config";
import { CommandCall, EngineState, Run, healthyFacts, providerError, rawConfig, reveal, runProgram } from "./harness";

/** A fake host side: every command succeeds; preflight prints healthy facts; the token step prints a receipt; `fail` names steps that fail. */
function fakeHosts(fail: string[] = []) {
    const calls: CommandCall[] = [];
    let clock = 0;
    const execute = async (call: CommandCall) => {
        calls.push(call);
        if (fail.includes(call.name)) throw new Error(`${call.name} failed`);
        if (call.name.endsWith("-preflight")) return { stdout: JSON.stringify(healthyFacts(call.name.replace(/-preflight$/, ""))), stderr: "" };
        if (call.name.endsWith("-token") && call.field !== "delete") return { stdout: `bootstrap token abc123 valid until t${clock++}`, stderr: "" };
        return { stdout: `${call.name} ${call.field} done`, stderr: "" };
    };
    return { calls, execute };
}

async function upFrom(state: EngineState | undefined, raw: RawConfig, fail: string[] = [], o: { replace?: string[]; failResources?: string[] } = {}) {
    const hosts = fakeHosts(fail);
    const run = await runProgram(raw, { execute: hosts.execute, state, ...o });
    return { run, calls: hosts.calls };
}

const refusal = (run: Run) => run.errors.map((e) => e.message).find((m) => m.startsWith("Refused:"));

describe("pulumi preview of a brand-new stack", () => {
    let run: Run;
    beforeAll(async () => {
        run = await runProgram(rawConfig(), { preview: true });
    });

    test("every step's command text is known, and its first lines say what runs where", () => {
        expect(run.errors).toEqual([]);
        for (const c of run.commands()) {
            const i = reveal<Record<string, unknown>>(c.inputs);
            for (const field of ["create", "update", "delete"] as const) {
                if (!(field in i)) continue;
                expect({ step: c.name, field, type: typeof i[field] }).toEqual({ step: c.name, field, type: "string" });
            }
            const first = (i.create as string).split("\n")[0];
            expect(first).toMatch(new RegExp(`^# kubeadm-pulumi step ${c.name}: [a-z-]+ on [a-z0-9-]+ \\(ubuntu@192\\.0\\.2\\.1[0-9]:22\\)$`));
        }
        // prepare, token and join (which used to depend on preflight, random and tls outputs) are among them
        expect(run.commands().map((c) => c.name)).toEqual(expect.arrayContaining(["worker-1-prepare", "worker-1-token", "worker-1-join"]));
    });

    test("the host a step runs on is in its text (the connection itself is secret)", () => {
        expect(reveal<string>(run.byName("worker-1-token").inputs.create).split("\n")[0]).toContain("token on cp-1 (ubuntu@192.0.2.10:22)");
        expect(reveal<string>(run.byName("worker-1-join").inputs.create).split("\n")[0]).toContain("join on worker-1 (ubuntu@192.0.2.11:22)");
    });

    test("a failed step's error (the provider repeats the command) stays short, its cause after one line", () => {
        for (const c of run.commands()) {
            const create = reveal<string>(c.inputs.create);
            const message = providerError(create, 1, "preflight failed on host worker-1:\n  - TCP port 10250 is already in use by socat (pid 7). Fix: ...\n");
            expect({ step: c.name, bytes: Buffer.byteLength(message) < 4000 }).toEqual({ step: c.name, bytes: true });
            expect(message.split("\n")[1]).toBe("preflight failed on host worker-1:");
        }
    });
});

describe("a live cluster", () => {
    let live: EngineState;
    beforeAll(async () => {
        const { run } = await upFrom(undefined, rawConfig());
        expect(run.failures).toEqual([]);
        live = run.state;
    });

    test("a second up with the same config changes nothing", async () => {
        const { run, calls } = await upFrom(live, rawConfig());
        expect(calls).toEqual([]);
        expect(run.operations.filter((o) => o.op !== "same")).toEqual([]);
    });

    test("every change a running cluster cannot take is refused at once, at preview, naming the key, old and new value, and the fix", async () => {
        const changed = rawConfig({
            kubernetesVersion: "1.36.5",
            network: { podSubnet: "10.32.0.0/16", serviceSubnet: "10.96.0.0/12", cni: "cilium" },
            apiServer: { extraSans: ["k8s.example.com"], port: 7443 },
            kubeadm: { kubeProxyMode: "nftables", kubelet: { maxPods: 200 } },
        });
        (changed.hosts as Record<string, unknown>[])[1].roles = ["worker", "control-plane"];
        (changed.hosts as Record<string, unknown>[])[2].internalAddress = "10.0.0.99";
        for (const preview of [true, false]) {
            const calls: CommandCall[] = [];
            const run = await runProgram(changed, { state: live, preview, execute: async (c) => (calls.push(c), { stdout: "", stderr: "" }) });
            expect(calls).toEqual([]);
            const message = refusal(run)!;
            expect(message.split("\n")[0]).toBe("Refused: 9 changes that a running cluster cannot take (nothing was touched):");
            expect(message).toContain(`  - kubernetesVersion: "1.36.4" -> "1.36.5": the cluster runs Kubernetes 1.36.4; moving it to another version is a kubeadm upgrade`);
            expect(message).toContain(`Set kubernetesVersion back to "1.36.4"`);
            for (const key of ["network.podSubnet", "network.cni", "apiServer.extraSans", "apiServer.port", "kubeadm.kubeProxyMode", "kubeadm.kubelet", "hosts[1].roles", "hosts[2].internalAddress"]) {
                expect(message).toContain(`  - ${key}: `);
            }
            expect(message).toContain(`"10.0.0.12" -> "10.0.0.99"`);
        }
    });

    test("the first control plane cannot be moved or removed", async () => {
        const raw = rawConfig();
        const hosts = raw.hosts as Record<string, unknown>[];
        const reordered = rawConfig({ hosts: [{ ...hosts[1], roles: ["control-plane"] }, { ...hosts[0] }, hosts[2]] });
        const run = await runProgram(reordered, { state: live, preview: true });
        expect(refusal(run)).toContain(`  - hosts: "cp-1 is the first control plane" -> "worker-1 is the first control plane": cp-1 ran kubeadm init and must stay the first host`);
    });

    test("changes the cluster takes are not refused: workers added or removed, SSH settings, preflight.ignore, package source", async () => {
        for (const raw of [
            rawConfig({}, 3),
            rawConfig({}, 1),
            rawConfig({ ssh: { user: "admin", port: 2222, privateKey: (rawConfig().ssh as { privateKey: string }).privateKey } }),
            rawConfig({ preflight: { ignore: ["cgroup"] }, packages: { localRepository: { apt: "http://10.0.0.5/debs ./" } } }),
        ]) {
            const run = await runProgram(raw, { state: live, preview: true });
            expect(run.errors).toEqual([]);
        }
    });

    test("a host removed from the stack and added back later with another role is a new node", async () => {
        const { run: removed } = await upFrom(live, rawConfig({}, 1));
        expect(removed.failures).toEqual([]);
        const back = rawConfig({}, 2);
        (back.hosts as Record<string, unknown>[])[2].roles = ["worker", "control-plane"];
        const run = await runProgram(back, { state: removed.state, preview: true });
        expect(run.errors).toEqual([]);
    });

    test("a changed SSH user updates every step in place (update commands; no replacement, no delete)", async () => {
        const { run, calls } = await upFrom(live, rawConfig({ ssh: { user: "admin", privateKey: (rawConfig().ssh as { privateKey: string }).privateKey } }));
        expect(run.failures).toEqual([]);
        expect(calls.filter((c) => c.field === "delete")).toEqual([]);
        const fields = Object.fromEntries(calls.map((c) => [c.name, c.field]));
        expect(fields).toMatchObject({ "cp-1-init": "update", "worker-1-join": "update", "worker-1-token": "update", "worker-1-node": "update", "cp-1-scripts": "update", "cp-1-prepare": "create", "cp-1-preflight": "create" });
    });

    test("pulumi up --replace of a step: the new create runs first, the old step's stored delete after", async () => {
        const { run, calls } = await upFrom(live, rawConfig(), [], { replace: ["worker-1-join"] });
        expect(run.failures).toEqual([]);
        const i = calls.findIndex((c) => c.name === "worker-1-join" && c.field === "create");
        const j = calls.findIndex((c) => c.name === "worker-1-join" && c.field === "delete");
        expect(i).toBeGreaterThanOrEqual(0);
        expect(j).toBeGreaterThan(i);
        expect(calls[j].command).toContain("readonly KP_ACTION='delete'\nreadonly KP_CLAIM='worker-1-join'");
        expect(calls[i].command).toContain("readonly KP_ACTION='create'\nreadonly KP_CLAIM='worker-1-join'");
    });
});

describe("failures stop what has not started", () => {
    test("a host that fails preflight gets no token step and no join; other hosts' steps already running finish", async () => {
        const { run, calls } = await upFrom(undefined, rawConfig(), ["worker-2-preflight"]);
        expect(run.failures.map((f) => f.name)).toEqual(["worker-2-preflight"]);
        const ran = calls.map((c) => c.name);
        expect(ran).not.toContain("worker-2-token");
        expect(ran).not.toContain("worker-2-join");
    });

    test("a failing pod network comes after every join: no join is left half done", async () => {
        const { run, calls } = await upFrom(undefined, rawConfig(), [], { failResources: ["kubeadm-cluster-cni-release"] });
        expect(run.failures.map((f) => f.name)).toEqual(["kubeadm-cluster-cni-release"]);
        for (const w of ["worker-1", "worker-2"]) expect(calls.map((c) => c.name)).toEqual(expect.arrayContaining([`${w}-token`, `${w}-join`, `${w}-node`]));
    });
});

describe("the pod network", () => {
    test("network.cni none: no CNI resources at all", async () => {
        const run = await runProgram(rawConfig({ network: { cni: "none" } }));
        expect(run.resources.filter((r) => r.name.includes("-cni"))).toEqual([]);
    });

    test("charts.<name>.path: the release loads the local archive, nothing is fetched", async () => {
        const archive = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "kp-chart-")), "flannel-v0.28.5.tgz");
        fs.writeFileSync(archive, "");
        const run = await runProgram(rawConfig({ charts: { flannel: { path: archive } } }));
        const release = reveal<Record<string, unknown>>(run.byName("kubeadm-cluster-cni-release").inputs);
        expect(release.chart).toBe(archive);
        expect(release.repositoryOpts).toBeUndefined();
        expect(release.version).toBeUndefined();
    });

    test("charts.<name>.values are merged over the program's values", async () => {
        const run = await runProgram(rawConfig({ charts: { flannel: { values: { flannel: { image: { repository: "mirror.example/flannel/flannel" } } } } } }));
        const release = reveal<Record<string, unknown>>(run.byName("kubeadm-cluster-cni-release").inputs);
        expect(release.values).toEqual({ podCidr: "10.244.0.0/16", flannel: { image: { repository: "mirror.example/flannel/flannel" } } });
    });

    test("charts.<name>.repo: the pinned chart and version from the mirror", async () => {
        const run = await runProgram(rawConfig({ network: { cni: "cilium" }, charts: { cilium: { repo: "https://mirror.example/cilium" } } }));
        const release = reveal<Record<string, unknown>>(run.byName("kubeadm-cluster-cni-release").inputs);
        expect(release).toMatchObject({ chart: "cilium", version: "1.20.2", repositoryOpts: { repo: "https://mirror.example/cilium" } });
    });
});
