/**
 * The discovery hash the program computes must equal what the openssl
 * pipeline from the kubeadm docs gives for the same real certificate.
 */
import { execFileSync, execSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import { discoveryHash, renderKubeconfig } from "../components/pki";
import { SECRET_MARKERS, rawConfig, reveal, runProgram } from "./harness";

function tmp(): string {
    return fs.mkdtempSync(path.join(os.tmpdir(), "kubeadm-pulumi-hash-"));
}

function opensslHash(dir: string, keyCmd: "rsa" | "pkey"): string {
    const out = execSync(
        `openssl x509 -pubkey -noout -in ca.crt | openssl ${keyCmd} -pubin -outform der 2>/dev/null | openssl dgst -sha256 -hex`,
        { cwd: dir, encoding: "utf8", shell: "/bin/bash" });
    return "sha256:" + out.trim().split(/\s+/).pop();
}

describe("discovery hash", () => {
    test("ECDSA P-256 CA: equals `openssl x509 -pubkey | openssl pkey -pubin -outform der | sha256`", () => {
        const dir = tmp();
        execFileSync("openssl", ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key"], { cwd: dir });
        execFileSync("openssl", ["req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=kubernetes", "-days", "1", "-out", "ca.crt"], { cwd: dir });
        const pem = fs.readFileSync(path.join(dir, "ca.crt"), "utf8");
        expect(discoveryHash(pem)).toMatch(/^sha256:[0-9a-f]{64}$/);
        expect(discoveryHash(pem)).toBe(opensslHash(dir, "pkey"));
    });

    test("RSA CA: equals the seed's `openssl rsa -pubin -outform der` pipeline", () => {
        const dir = tmp();
        execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-subj", "/CN=kubernetes", "-days", "1", "-out", "ca.crt"], { cwd: dir, stdio: "ignore" });
        const pem = fs.readFileSync(path.join(dir, "ca.crt"), "utf8");
        expect(discoveryHash(pem)).toBe(opensslHash(dir, "rsa"));
    });

    test("different CAs give different hashes", () => {
        const make = () => {
            const dir = tmp();
            execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-subj", "/CN=kubernetes", "-days", "1", "-out", "ca.crt"], { cwd: dir, stdio: "ignore" });
            return discoveryHash(fs.readFileSync(path.join(dir, "ca.crt"), "utf8"));
        };
        expect(make()).not.toBe(make());
    });
});

describe("kubeconfig", () => {
    test("is valid YAML that kubectl-style readers decode back to the inputs", () => {
        const k = YAML.parse(renderKubeconfig({
            clusterName: "c", server: "https://192.0.2.10:6443", caCertPem: "CA", clientCertPem: "CERT", clientKeyPem: "KEY",
        }));
        expect(k.kind).toBe("Config");
        expect(k["current-context"]).toBe(k.contexts[0].name);
        expect(Buffer.from(k.clusters[0].cluster["certificate-authority-data"], "base64").toString()).toBe("CA");
        expect(Buffer.from(k.users[0].user["client-key-data"], "base64").toString()).toBe("KEY");
    });
});

describe("PKI resources", () => {
    test("ECDSA P-256 CAs, RSA service-account key, admin cert in kubeadm:cluster-admins signed by the cluster CA", async () => {
        const run = await runProgram(rawConfig({ ssh: { privateKey: SECRET_MARKERS.sshKey } }, 0));
        const keys = run.resources.filter((r) => r.type === "tls:index:PrivateKey");
        expect(keys.map((k) => k.name).sort()).toEqual([
            "cp-1-kubelet-serving-key",
            "kubeadm-cluster-addons-dashboard-key", "kubeadm-cluster-addons-ingress-ca-key",
            "kubeadm-cluster-pki-admin-key", "kubeadm-cluster-pki-ca-key", "kubeadm-cluster-pki-etcd-ca-key",
            "kubeadm-cluster-pki-front-proxy-ca-key", "kubeadm-cluster-pki-sa-key",
        ]);
        for (const k of keys) {
            if (k.name.endsWith("sa-key")) expect(reveal(k.inputs)).toMatchObject({ algorithm: "RSA", rsaBits: 2048 });
            else expect(reveal(k.inputs)).toMatchObject({ algorithm: "ECDSA", ecdsaCurve: "P256" });
            expect(k.secretOutputs).toContain("privateKeyPem");
        }
        const cas = run.resources.filter((r) => r.type === "tls:index:SelfSignedCert");
        expect(cas.map((c) => reveal<{ subject: { commonName: string } }>(c.inputs).subject.commonName).sort())
            .toEqual(["etcd-ca", "front-proxy-ca", "kubeadm-cluster ingress CA", "kubernetes"]);
        for (const c of cas) expect(reveal(c.inputs)).toMatchObject({ isCaCertificate: true });
        const csr = reveal<{ subject: { commonName: string; organization: string } }>(run.byName("kubeadm-cluster-pki-admin-csr").inputs);
        expect(csr.subject).toEqual({ commonName: "kubernetes-admin", organization: "kubeadm:cluster-admins" });
        const admin = reveal<{ allowedUses: string[] }>(run.byName("kubeadm-cluster-pki-admin-cert").inputs);
        expect(admin.allowedUses).toContain("client_auth");
        // the kubelet's serving certificate: the subject its own serving CSR would ask for, server use only
        const serving = reveal<{ subject: object; dnsNames: string[]; ipAddresses: string[] }>(run.byName("cp-1-kubelet-serving-csr").inputs);
        expect(serving.subject).toEqual({ commonName: "system:node:cp-1", organization: "system:nodes" });
        expect(serving.dnsNames).toEqual(["cp-1"]);
        expect(serving.ipAddresses).toEqual(["10.0.0.10", "192.0.2.10"]);
        expect(reveal<{ allowedUses: string[] }>(run.byName("cp-1-kubelet-serving-cert").inputs).allowedUses).toEqual(["digital_signature", "key_encipherment", "server_auth"]);
    });
});

describe("harness realPki (what the cluster tier runs on)", () => {
    test("every key distinct; CAs self-signed with CA:TRUE and keyCertSign; the admin certificate verifies against the cluster CA as a client in kubeadm:cluster-admins", async () => {
        const run = await runProgram(rawConfig({ ssh: { privateKey: SECRET_MARKERS.sshKey } }, 0), { realPki: true });
        const out = (name: string, key: string) => reveal<Record<string, string>>(run.state.get(name)!.outputs)[key];
        const keys = ["ca", "front-proxy-ca", "etcd-ca", "admin"].map((k) => out(`kubeadm-cluster-pki-${k}-key`, "privateKeyPem"));
        keys.push(out("kubeadm-cluster-pki-sa-key", "privateKeyPem"));
        expect(new Set(keys).size).toBe(5);
        expect(keys[4].startsWith(`-----BEGIN ${"RSA PRIVATE"} KEY-----`)).toBe(true);
        const dir = tmp();
        const w = (f: string, v: string) => fs.writeFileSync(path.join(dir, f), v);
        const x509 = (f: string, ...a: string[]) => execFileSync("openssl", ["x509", "-in", f, "-noout", ...a], { cwd: dir, encoding: "utf8" });
        for (const ca of ["ca", "front-proxy-ca", "etcd-ca"]) {
            w(`${ca}.crt`, out(`kubeadm-cluster-pki-${ca}-cert`, "certPem"));
            const text = x509(`${ca}.crt`, "-text");
            expect(text).toMatch(/CA:TRUE/);
            expect(text).toMatch(/Certificate Sign/);
            expect(x509(`${ca}.crt`, "-subject")).toMatch(/OU ?= ?kubeadm-cluster, CN ?= ?(kubernetes|front-proxy-ca|etcd-ca)/);
        }
        w("admin.crt", out("kubeadm-cluster-pki-admin-cert", "certPem"));
        expect(execFileSync("openssl", ["verify", "-CAfile", "ca.crt", "-purpose", "sslclient", "admin.crt"], { cwd: dir, encoding: "utf8" })).toMatch(/admin.crt: OK/);
        expect(() => execFileSync("openssl", ["verify", "-CAfile", "etcd-ca.crt", "admin.crt"], { cwd: dir, stdio: "pipe" })).toThrow();
        expect(x509("admin.crt", "-subject")).toMatch(/O ?= ?kubeadm:cluster-admins, CN ?= ?kubernetes-admin/);
        // the kubeconfig the program exports carries exactly these
        // each kubelet's serving certificate verifies against the cluster CA as a server for its node name and address
        w("kubelet.crt", out("cp-1-kubelet-serving-cert", "certPem"));
        expect(execFileSync("openssl", ["verify", "-CAfile", "ca.crt", "-purpose", "sslserver", "kubelet.crt"], { cwd: dir, encoding: "utf8" })).toMatch(/kubelet.crt: OK/);
        expect(() => execFileSync("openssl", ["verify", "-CAfile", "ca.crt", "-purpose", "sslclient", "kubelet.crt"], { cwd: dir, stdio: "pipe" })).toThrow();
        expect(x509("kubelet.crt", "-ext", "subjectAltName")).toMatch(/DNS:cp-1, IP Address:10.0.0.10, IP Address:192.0.2.10/);
        expect(x509("kubelet.crt", "-subject")).toMatch(/O ?= ?system:nodes, CN ?= ?system:node:cp-1/);
        const kc = YAML.parse(await run.value(run.cluster.kubeconfig));
        expect(Buffer.from(kc.users[0].user["client-certificate-data"], "base64").toString()).toBe(out("kubeadm-cluster-pki-admin-cert", "certPem"));
    });
});
