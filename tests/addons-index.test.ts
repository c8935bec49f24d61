/**
 * The entry point with a user-supplied dashboard certificate stored as a
 * secret (`pulumi config set --secret --path addons.dashboard.tls.key`): the
 * key travels only as a secret, the outputs say where the dashboard is.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Run, plainStrings, rawConfig, reveal, runProgram } from "./harness";

describe("index.ts with addons stored as a secret", () => {
    let run: Run;
    let key: string;
    let cert: string;

    beforeAll(async () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kubeadm-pulumi-usercert-"));
        execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=k8s.example.com",
            "-days", "30", "-keyout", "k.pem", "-out", "c.pem"], { cwd: dir, stdio: "pipe" });
        key = fs.readFileSync(path.join(dir, "k.pem"), "utf8");
        cert = fs.readFileSync(path.join(dir, "c.pem"), "utf8");
        run = await runProgram(rawConfig({ addons: { dashboard: { host: "k8s.example.com", access: "cluster-admin", tls: { certificate: cert, key } } } }), {
            secretKeys: ["ssh", "addons"],
            // (a preview: the example hosts do not exist, and `pulumi up` checks they answer first)
            preview: true,
            loadIndex: () => require("../index"),
        });
    });

    test("the key reaches the TLS Secret as a secret and nothing else; no ingress CA is made", () => {
        const body = key.split("\n")[1];
        const holders = run.resources.filter((r) => JSON.stringify(reveal(r.inputs)).includes(body)).map((r) => r.name);
        expect(holders).toEqual(["kubeadm-cluster-addons-dashboard-tls"]);
        for (const r of run.resources) expect(plainStrings(r.inputs).some((s) => s.includes(body))).toBe(false);
        expect(reveal<{ stringData: Record<string, string> }>(run.byName("kubeadm-cluster-addons-dashboard-tls").inputs).stringData["tls.crt"]).toBe(cert.trim() + "\n");
        expect(run.resources.filter((r) => r.name.includes("ingress-ca"))).toEqual([]);
    });

    test("outputs: the URL, the token (secret), no CA of the program's", async () => {
        const e = run.exports!;
        expect(e.dashboardUrl).toBe("https://k8s.example.com/");
        expect(await run.secret(e.dashboardToken as never)).toBe(true);
        expect(e.ingressCaCertificate).toBeUndefined();
        expect(JSON.stringify(e.ingressEndpoints)).not.toContain(key.split("\n")[1]);
    });
});
