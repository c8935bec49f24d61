/**
 * `users` under Pulumi mocks: per entry a key, a certificate from the cluster
 * CA (CN = name, O = group), a ClusterRoleBinding or (with a namespace) a
 * RoleBinding to the ClusterRole, and a kubeconfig in a secret output;
 * removing an entry deletes its binding and certificate.
 */
import * as crypto from "crypto";
import * as YAML from "yaml";
import { Run, isSecretValue, rawConfig, reveal, runProgram } from "./harness";
import { RawConfig } from "../components/config";

const USERS = [
    { name: "jane@example.com", role: "view" },
    { name: "ci-bot", role: "edit", namespace: "apps", groups: ["team-a"] },
];

function withUsers(users: unknown[]): RawConfig {
    return rawConfig({ users } as Partial<RawConfig>);
}

describe("users", () => {
    let run: Run;
    beforeAll(async () => {
        run = await runProgram(withUsers(USERS), { realPki: true });
    });

    test("a cluster-wide user gets a ClusterRoleBinding, a namespaced one a RoleBinding in its namespace, both to a ClusterRole", () => {
        const jane = run.byName("kubeadm-cluster-users-jane@example.com-binding");
        expect(jane.type).toBe("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding");
        expect(reveal<Record<string, unknown>>(jane.inputs)).toMatchObject({
            metadata: { name: "kubeadm-pulumi:user:jane@example.com" },
            roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "view" },
            subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: "jane@example.com" }],
        });
        expect((reveal<{ metadata: Record<string, unknown> }>(jane.inputs)).metadata.namespace).toBeUndefined();
        const bot = run.byName("kubeadm-cluster-users-ci-bot-binding");
        expect(bot.type).toBe("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding");
        expect(reveal<Record<string, unknown>>(bot.inputs)).toMatchObject({
            metadata: { name: "kubeadm-pulumi:user:ci-bot", namespace: "apps" },
            roleRef: { kind: "ClusterRole", name: "edit" },
            subjects: [{ kind: "User", name: "ci-bot" }],
        });
        // the subjects are the user only: the group is in the certificate, for the user's own bindings
        expect(JSON.stringify(reveal(bot.inputs))).not.toContain("team-a");
    });

    test("each certificate is signed by the cluster CA with CN = name and O = the group, for client auth", async () => {
        const kubeconfigs = await run.value(run.cluster.userKubeconfigs);
        expect(Object.keys(kubeconfigs).sort()).toEqual(["ci-bot", "jane@example.com"]);
        const ca = new crypto.X509Certificate(await caCert(run));
        for (const [name, group] of [["jane@example.com", undefined], ["ci-bot", "team-a"]] as const) {
            const doc = YAML.parse(kubeconfigs[name]);
            expect(doc.users[0].name).toBe(name);
            expect(doc.clusters[0].cluster.server).toBe("https://192.0.2.10:6443");
            const cert = new crypto.X509Certificate(Buffer.from(doc.users[0].user["client-certificate-data"], "base64"));
            expect(cert.subject.split("\n")).toEqual(group ? [`O=${group}`, `CN=${name}`] : [`CN=${name}`]);
            expect(cert.verify(ca.publicKey)).toBe(true);
            const key = crypto.createPrivateKey(Buffer.from(doc.users[0].user["client-key-data"], "base64"));
            expect(cert.checkPrivateKey(key)).toBe(true);
            expect(cert.keyUsage ?? []).toContain("1.3.6.1.5.5.7.3.2"); // clientAuth
        }
    });

    test("the kubeconfigs are a secret output, and the CA key reaches the certificates only as a secret", async () => {
        expect(await run.secret(run.cluster.userKubeconfigs)).toBe(true);
        for (const u of ["jane@example.com", "ci-bot"]) {
            expect(isSecretValue(run.byName(`kubeadm-cluster-users-${u}-cert`).inputs.caPrivateKeyPem)).toBe(true);
        }
    });

    test("removing an entry deletes its binding, certificate and key; the others stay", async () => {
        const next = await runProgram(withUsers([USERS[1]]), { state: run.state, realPki: true });
        expect(next.errors).toEqual([]);
        const deleted = next.operations.filter((o) => o.op === "delete").map((o) => o.name).sort();
        expect(deleted).toEqual([
            "kubeadm-cluster-users-jane@example.com-binding",
            "kubeadm-cluster-users-jane@example.com-cert",
            "kubeadm-cluster-users-jane@example.com-csr",
            "kubeadm-cluster-users-jane@example.com-key",
        ]);
        expect(next.operations.filter((o) => o.name.startsWith("kubeadm-cluster-users-ci-bot")).map((o) => o.op)).toEqual(["same", "same", "same", "same"]);
        expect(Object.keys(await next.value(next.cluster.userKubeconfigs))).toEqual(["ci-bot"]);
    });

    test("no users: no user resources, an empty secret map", async () => {
        const none = await runProgram(rawConfig());
        expect(none.resources.filter((r) => r.name.includes("-users-"))).toEqual([]);
        expect(await none.value(none.cluster.userKubeconfigs)).toEqual({});
        expect(await none.secret(none.cluster.userKubeconfigs)).toBe(true);
    });
});

/** The cluster CA certificate the run made (the CA's SelfSignedCert output). */
async function caCert(run: Run): Promise<string> {
    const kubeconfig = YAML.parse(await run.value(run.cluster.kubeconfig));
    return Buffer.from(kubeconfig.clusters[0].cluster["certificate-authority-data"], "base64").toString("utf8");
}
