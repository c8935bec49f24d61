/**
 * The plan (components/plan.ts) lists exactly the remote steps the program
 * registers, with the same command texts; and the entry point's render check
 * turns a command no host could run into a config problem with its path.
 */
import { parseClusterConfig } from "../components/config";
import { planSteps, renderProblems } from "../components/plan";
import { rawConfig, reveal, runProgram } from "./harness";

describe("the plan", () => {
    test.each([
        ["1 control plane + 2 workers", rawConfig()],
        ["3 control planes + a worker, labels and taints", rawConfig({
            hosts: [
                ...[1, 2, 3].map((i) => ({ name: `cp-${i}`, address: `192.0.2.${10 + i}`, roles: ["control-plane"] })),
                { name: "w-1", address: "192.0.2.20", roles: ["worker"], labels: { tier: "web" }, taints: [{ key: "gpu", effect: "NoSchedule" }] },
            ],
            apiServer: { address: "192.0.2.100" },
        })],
    ])("is what the program registers: %s", async (_label, raw) => {
        const run = await runProgram(raw);
        const registered = new Map(run.commands().map((c) => [c.name, reveal<Record<string, string | undefined>>(c.inputs)]));
        const plan = planSteps(parseClusterConfig(raw, "kubeadm-cluster"));
        expect(plan.map((s) => s.name).sort()).toEqual([...registered.keys()].sort());
        for (const s of plan) {
            const r = registered.get(s.name)!;
            expect({ step: s.name, create: s.commands.create, update: s.commands.update, delete: s.commands.delete })
                .toEqual({ step: s.name, create: r.create, update: r.update, delete: r.delete });
            // the plan's order never lists a step before what it runs after
            for (const a of s.after) expect(plan.findIndex((x) => x.name === a)).toBeLessThan(plan.indexOf(s));
        }
    });

    test("a value that makes a command too long for one argument is a problem at its key, not a crash", () => {
        const spec = parseClusterConfig(rawConfig({ kubeadm: { apiServerExtraArgs: { "audit-policy-file": "x".repeat(130 * 1024) } } }), "demo");
        const problems = renderProblems(spec);
        expect(problems).toEqual([
            { path: "kubeadm.apiServerExtraArgs", message: expect.stringMatching(/^makes the cp-1-init command 1\d\d KiB long, over the 120 KiB one command can be on Linux: shorten it$/) },
        ]);
        expect(renderProblems(parseClusterConfig(rawConfig(), "demo"))).toEqual([]);
    });
});
