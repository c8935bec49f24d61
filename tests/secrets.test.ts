/**
 * Secrets audit: the real entry point (`index.ts`, reading stack config the
 * way `pulumi up` does) runs under mocks with recognisable secret values. Any
 * of them in a non-secret resource input, a command text (even inside a secret
 * wrapper), a stack output that is not a secret, or the rendered plan (every
 * registered input serialised the way the engine stores state, secrets as
 * ciphertext) fails the test.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
// Mock hosts do not exist: the SSH reachability check (tested in reach.test.ts) is left out here.
jest.mock("../components/reach", () => ({
    ...jest.requireActual("../components/reach"),
    hostsReachable: () => require("@pulumi/pulumi").output(undefined),
}));

import { Run, SECRET_MARKERS, SECRET_SIG, SIG_KEY, allStrings, isSecretValue, plainStrings, rawConfig, runProgram, testPki } from "./harness";

/** Serialise inputs as state: a secret becomes an opaque ciphertext marker. */
function asState(v: unknown): unknown {
    if (isSecretValue(v)) return { [SIG_KEY]: SECRET_SIG, ciphertext: "<encrypted>" };
    if (Array.isArray(v)) return v.map(asState);
    if (typeof v === "object" && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, asState(x)]));
    return v;
}

describe("secrets audit through index.ts", () => {
    let run: Run;
    let secrets: Record<string, string>;

    beforeAll(async () => {
        run = await runProgram(rawConfig({
            hosts: [
                { name: "cp-1", address: "192.0.2.10", roles: ["control-plane"] },
                { name: "cp-2", address: "192.0.2.11", roles: ["control-plane"] },
                { name: "worker-1", address: "192.0.2.20", roles: ["worker"] },
            ],
            apiServer: { address: "192.0.2.100" },
            users: [{ name: "jane", role: "view" }],
        } as Parameters<typeof rawConfig>[0]), {
            // Jest gives each test file its own module registry: index.ts runs once, here.
            loadIndex: () => require("../index"),
        });
        const pki = testPki();
        const middle = (pem: string) => pem.trim().split("\n")[Math.floor(pem.trim().split("\n").length / 2)];
        secrets = {
            "SSH private key": SECRET_MARKERS.sshKey.split("\n")[1],
            "CA / admin private key": middle(pki.caKey),
            "service-account private key": middle(pki.rsaKey),
            "CA key in a bundle (base64)": Buffer.from(pki.caKey).toString("base64").slice(40, 80),
        };
        for (const r of run.resources.filter((x) => x.type === "random:index:RandomPassword")) {
            secrets[`bootstrap token of ${r.name}`] = SECRET_MARKERS.tokenSecret(r.name);
        }
    });

    test("the entry point built the cluster from stack config", () => {
        expect(run.commands().map((c) => c.name)).toEqual(expect.arrayContaining(["cp-1-init", "cp-2-join", "worker-1-join"]));
        expect(Object.keys(secrets).filter((k) => k.startsWith("bootstrap token"))).toHaveLength(2);
    });

    test("no secret in any non-secret resource input", () => {
        const leaks: string[] = [];
        for (const r of run.resources) {
            const plain = plainStrings(r.inputs).join("\n");
            for (const [what, value] of Object.entries(secrets)) if (plain.includes(value)) leaks.push(`${what} in ${r.name}`);
        }
        expect(leaks).toEqual([]);
    });

    test("no secret in any command text, even inside a secret wrapper", () => {
        const leaks: string[] = [];
        for (const c of run.commands()) {
            for (const field of ["create", "delete", "update"]) {
                const text = allStrings(c.inputs[field]).join("\n");
                for (const [what, value] of Object.entries(secrets)) if (text.includes(value)) leaks.push(`${what} in ${c.name}.${field}`);
            }
        }
        expect(leaks).toEqual([]);
    });

    test("stack outputs: the kubeconfigs (admin and users) and the dashboard token are secrets; nothing else carries a secret", async () => {
        const exports = run.exports!;
        expect(Object.keys(exports).sort()).toEqual([
            "apiEndpoint", "dashboardToken", "dashboardUrl", "ingressCaCertificate", "ingressEndpoints", "kubeconfig", "kubernetesVersion", "nodes", "userKubeconfigs",
        ]);
        for (const secret of ["kubeconfig", "dashboardToken", "userKubeconfigs"]) {
            const out = exports[secret] as pulumi.Output<string>;
            expect(await (out as unknown as { isSecret: Promise<boolean> }).isSecret).toBe(true);
        }
        expect(Object.keys(await run.value(exports.userKubeconfigs as pulumi.Output<Record<string, string>>))).toEqual(["jane"]);
        expect(await (exports.ingressCaCertificate as unknown as { isSecret: Promise<boolean> }).isSecret).toBe(false);
        const plainOutputs = JSON.stringify({
            apiEndpoint: exports.apiEndpoint, nodes: exports.nodes, kubernetesVersion: exports.kubernetesVersion,
            dashboardUrl: exports.dashboardUrl, ingressEndpoints: exports.ingressEndpoints, ingressCaCertificate: await run.value(exports.ingressCaCertificate as pulumi.Output<string>),
        });
        for (const value of Object.values(secrets)) expect(plainOutputs.includes(value)).toBe(false);
        expect(exports.apiEndpoint).toBe("https://192.0.2.100:6443");
    });

    test("the rendered plan (all inputs as the engine stores them) holds no secret", () => {
        const plan = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "kubeadm-pulumi-plan-")), "plan.json");
        fs.writeFileSync(plan, JSON.stringify(run.resources.map((r) => ({ type: r.type, name: r.name, inputs: asState(r.inputs) })), null, 2));
        const text = fs.readFileSync(plan, "utf8");
        expect(text.length).toBeGreaterThan(10000);
        const leaks = Object.entries(secrets).filter(([, value]) => text.includes(value)).map(([what]) => what);
        expect(leaks).toEqual([]);
        // The audit can fail: the same plan with secrets left in the clear leaks.
        const clear = JSON.stringify(run.resources.map((r) => r.inputs));
        expect(Object.values(secrets).some((v) => clear.includes(v))).toBe(true);
    });
});
