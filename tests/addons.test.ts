/**
 * The add-ons under Pulumi mocks, through the real index.ts: which exist for
 * which config, in which order, with which values, and that the dashboard's
 * keys and token stay secrets.
 */
import * as crypto from "crypto";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ConfigError, RawConfig, parseClusterConfig } from "../components/config";
import { traefikValues, headlampValues, metricsServerValues, imageRef } from "../components/addons/values";
import { cniReleaseValues } from "../components/addons/cni";
import { ADDON_IMAGES } from "../components/versions";
import { Run, SECRET_MARKERS, allStrings, plainStrings, rawConfig, reveal, runProgram } from "./harness";

const RELEASES = ["kubeadm-cluster-addons-traefik", "kubeadm-cluster-addons-metrics-server", "kubeadm-cluster-addons-headlamp"];

function problemsOf(raw: RawConfig, secretKeys?: string[]): { path: string; message: string }[] {
    try {
        parseClusterConfig(raw, "kubeadm-cluster", secretKeys ? { secretKeys } : {});
    } catch (e) {
        if (e instanceof ConfigError) return e.problems;
        throw e;
    }
    return [];
}

/** A self-signed certificate and key for `host` made by openssl. */
function userCert(host: string): { cert: string; key: string } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kubeadm-pulumi-usercert-"));
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", `/CN=${host}`,
        "-addext", `subjectAltName=DNS:${host}`, "-days", "30", "-keyout", "k.pem", "-out", "c.pem"], { cwd: dir, stdio: "pipe" });
    const out = { cert: fs.readFileSync(path.join(dir, "c.pem"), "utf8"), key: fs.readFileSync(path.join(dir, "k.pem"), "utf8") };
    fs.rmSync(dir, { recursive: true, force: true });
    return out;
}

describe("default config: every add-on, in order", () => {
    let run: Run;
    beforeAll(async () => {
        run = await runProgram(rawConfig());
    });

    test("ingress, Gateway API CRDs, metrics-server, dashboard and smoke test exist", () => {
        for (const r of RELEASES) expect(run.byName(r).type).toBe("kubernetes:helm.sh/v3:Release");
        expect(run.byName("cp-1-gateway-api").type).toBe("command:remote:Command");
        expect(run.byName("cp-1-smoke-test").type).toBe("command:remote:Command");
        expect(run.byName("kubeadm-cluster-addons-dashboard-login-token").type).toBe("kubernetes:core/v1:Secret");
        expect(run.byName("kubeadm-cluster-addons-dashboard-login-binding").type).toBe("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding");
    });

    test("every add-on waits for the pod network; the dashboard for the ingress and its TLS Secret; the ingress for the Gateway API CRDs", () => {
        for (const r of RELEASES) expect(run.dependencies(r)).toContain("kubeadm-cluster-cni-release");
        expect(run.dependencies("kubeadm-cluster-addons-headlamp")).toEqual(expect.objectContaining({}));
        const dash = run.dependencies("kubeadm-cluster-addons-headlamp");
        for (const d of ["kubeadm-cluster-addons-traefik", "kubeadm-cluster-addons-dashboard-tls", "kubeadm-cluster-addons-headlamp-namespace"]) expect(dash).toContain(d);
        expect(run.dependencies("kubeadm-cluster-addons-traefik")).toContain("cp-1-gateway-api");
        expect(run.dependencies("cp-1-gateway-api")).toContain("cp-1-init");
    });

    test("the smoke test runs after everything it checks; nothing of the add-ons delays a join", () => {
        const smoke = run.dependencies("cp-1-smoke-test");
        for (const d of [...RELEASES, "kubeadm-cluster-cni-release", "worker-1-node", "worker-2-node"]) expect(smoke).toContain(d);
        for (const node of ["worker-1-join", "worker-2-join", "worker-1-token", "cp-1-init"]) {
            const deps = run.dependencies(node);
            for (const r of [...RELEASES, "cp-1-smoke-test", "cp-1-gateway-api", "kubeadm-cluster-cni-release"]) expect(deps.has(r)).toBe(false);
        }
    });

    test("the smoke test checks every node, the ingress on each worker, the dashboard route and the metrics API; its text holds no secret", () => {
        const create = reveal<string>(run.byName("cp-1-smoke-test").inputs.create);
        expect(create).toContain("readonly -a NODES=('cp-1' 'worker-1' 'worker-2')");
        expect(create).toContain("readonly -a INGRESS_TARGETS=('10.0.0.11:80' '10.0.0.12:80')");
        expect(create).toContain("readonly DASHBOARD_HOST='dashboard.kubeadm-cluster.internal'");
        expect(create).toContain("readonly CHECK_METRICS='true'");
        expect(create).toContain(`readonly SMOKE_IMAGE='${imageRef(ADDON_IMAGES.agnhost)}'`);
        expect(run.byName("cp-1-smoke-test").inputs.stdin).toBeUndefined();
    });

    test("outputs: dashboard URL, ingress endpoints per worker, the ingress CA that signed the dashboard certificate", async () => {
        const e = run.cluster.addons;
        expect(e.dashboardUrl).toBe("https://dashboard.kubeadm-cluster.internal/");
        expect(e.ingressEndpoints).toEqual([
            { node: "worker-1", address: "192.0.2.11", http: "http://192.0.2.11:80/", https: "https://192.0.2.11:443/" },
            { node: "worker-2", address: "192.0.2.12", http: "http://192.0.2.12:80/", https: "https://192.0.2.12:443/" },
        ]);
        const cert = reveal<{ caCertPem: unknown; subject: { commonName: string }; dnsNames: string[] }>(run.byName("kubeadm-cluster-addons-dashboard-csr").inputs);
        expect(cert.subject.commonName).toBe("dashboard.kubeadm-cluster.internal");
        expect(cert.dnsNames).toEqual(["dashboard.kubeadm-cluster.internal"]);
        expect(run.byName("kubeadm-cluster-addons-dashboard-cert").inputs.caCertPem).toBeDefined();
    });

    test("the login token and the TLS key are secrets; the binding is read-only (view) by default", async () => {
        expect(await run.secret(run.cluster.addons.dashboardToken!)).toBe(true);
        const tlsSecret = run.byName("kubeadm-cluster-addons-dashboard-tls");
        expect(plainStrings(tlsSecret.inputs).some((s) => s.includes("PRIVATE KEY"))).toBe(false);
        expect(allStrings(tlsSecret.inputs).some((s) => s.includes("PRIVATE KEY") || s.length > 0)).toBe(true);
        expect(reveal<{ roleRef: { name: string } }>(run.byName("kubeadm-cluster-addons-dashboard-login-binding").inputs).roleRef.name).toBe("view");
        const token = reveal<{ type: string; metadata: { annotations: Record<string, string> } }>(run.byName("kubeadm-cluster-addons-dashboard-login-token").inputs);
        expect(token.type).toBe("kubernetes.io/service-account-token");
        expect(token.metadata.annotations["kubernetes.io/service-account.name"]).toBe("dashboard-login");
    });

    test("Traefik: a DaemonSet on the workers' host network, the default IngressClass, Ingress and Gateway API providers", () => {
        const v = reveal<Record<string, any>>(run.byName("kubeadm-cluster-addons-traefik").inputs).values;
        expect(v.deployment.kind).toBe("DaemonSet");
        expect(v.hostNetwork).toBe(true);
        expect(v.ports.web.port).toBe(80);
        expect(v.ports.websecure.port).toBe(443);
        expect(v.ingressClass).toEqual({ enabled: true, isDefaultClass: true, name: "traefik" });
        expect(v.providers.kubernetesGateway.enabled).toBe(true);
        expect(v.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values).toEqual(["worker-1", "worker-2"]);
        expect(v.securityContext.capabilities).toEqual({ drop: ["ALL"], add: ["NET_BIND_SERVICE"] });
        expect(reveal<{ metadata: { labels: Record<string, string> } }>(run.byName("kubeadm-cluster-addons-traefik-namespace").inputs).metadata.labels["pod-security.kubernetes.io/enforce"]).toBe("privileged");
    });

    test("metrics-server verifies kubelets against the cluster CA, never --kubelet-insecure-tls; kubelets serve a certificate the program issued", () => {
        const v = reveal<Record<string, any>>(run.byName("kubeadm-cluster-addons-metrics-server").inputs).values;
        expect(v.args).toEqual(["--kubelet-certificate-authority=/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"]);
        expect(JSON.stringify(v)).not.toContain("insecure");
        const init = reveal<string>(run.byName("cp-1-init").inputs.create);
        expect(init).toContain("tlsCertFile: /var/lib/kubelet/pki/kubeadm-pulumi-serving.crt");
        expect(init).toContain("tlsPrivateKeyFile: /var/lib/kubelet/pki/kubeadm-pulumi-serving.key");
    });
});

describe("switches and values", () => {
    test("each add-on can be switched off on its own; the dashboard goes with the ingress", async () => {
        const names = async (addons: unknown) => new Set((await runProgram(rawConfig({ addons }))).resources.map((r) => r.name));
        const noMetrics = await names({ metricsServer: false });
        expect(noMetrics.has("kubeadm-cluster-addons-metrics-server")).toBe(false);
        expect(noMetrics.has("kubeadm-cluster-addons-traefik")).toBe(true);
        const noDashboard = await names({ dashboard: { enabled: false } });
        expect([...noDashboard].filter((n) => n.includes("dashboard") || n.includes("headlamp") || n.includes("ingress-ca"))).toEqual([]);
        expect(noDashboard.has("kubeadm-cluster-addons-traefik")).toBe(true);
        const noIngress = await names({ ingress: { enabled: false } });
        expect([...noIngress].filter((n) => /traefik|headlamp|dashboard|gateway-api/.test(n))).toEqual([]);
        const noSmoke = await names({ smokeTest: { enabled: false } });
        expect(noSmoke.has("cp-1-smoke-test")).toBe(false);
        const none = await names({ ingress: false, metricsServer: false, smokeTest: false });
        expect([...none].filter((n) => n.includes("-addons-") || n.endsWith("-smoke-test") || n.endsWith("-gateway-api"))).toEqual([]);
    });

    test("network.cni none: the add-ons are off unless asked for, and asking is refused with the reason", async () => {
        const run = await runProgram(rawConfig({ network: { cni: "none" } }));
        expect(run.resources.filter((r) => r.name.includes("-addons-") || r.name.endsWith("-smoke-test"))).toEqual([]);
        expect(problemsOf(rawConfig({ network: { cni: "none" }, addons: { metricsServer: true } }))).toEqual([
            { path: "addons.metricsServer.enabled", message: expect.stringContaining(`network.cni is "none"`) },
        ]);
    });

    test("exposure nodePort: an unprivileged pod behind fixed NodePorts; endpoints say so", async () => {
        const run = await runProgram(rawConfig({ addons: { ingress: { exposure: "nodePort", nodes: ["worker-2"], ports: { https: 31443 } } } }));
        const v = reveal<Record<string, any>>(run.byName("kubeadm-cluster-addons-traefik").inputs).values;
        expect(v.hostNetwork).toBeUndefined();
        expect(v.securityContext).toBeUndefined();
        expect(v.service.spec.type).toBe("NodePort");
        expect(v.ports).toEqual({ web: { nodePort: 30080 }, websecure: { nodePort: 31443 } });
        expect(run.cluster.addons.ingressEndpoints).toEqual([{ node: "worker-2", address: "192.0.2.12", http: "http://192.0.2.12:30080/", https: "https://192.0.2.12:31443/" }]);
        expect(run.cluster.addons.dashboardUrl).toBe("https://dashboard.kubeadm-cluster.internal:31443/");
        expect(reveal<{ metadata: { labels: Record<string, string> } }>(run.byName("kubeadm-cluster-addons-traefik-namespace").inputs).metadata.labels["pod-security.kubernetes.io/enforce"]).toBe("baseline");
    });

    test("a cluster without workers runs the ingress on its control planes (tolerating their taint)", async () => {
        const run = await runProgram(rawConfig({}, 0));
        const v = reveal<Record<string, any>>(run.byName("kubeadm-cluster-addons-traefik").inputs).values;
        expect(v.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values).toEqual(["cp-1"]);
        expect(v.tolerations).toEqual([{ key: "node-role.kubernetes.io/control-plane", operator: "Exists", effect: "NoSchedule" }]);
    });

    test("host name and access level reach the dashboard; cluster-admin only when asked for", async () => {
        const run = await runProgram(rawConfig({ addons: { dashboard: { host: "k8s.example.com", access: "cluster-admin" } } }));
        const v = reveal<Record<string, any>>(run.byName("kubeadm-cluster-addons-headlamp").inputs).values;
        expect(v.ingress.hosts).toEqual([{ host: "k8s.example.com", paths: [{ path: "/", type: "Prefix" }] }]);
        expect(v.ingress.tls).toEqual([{ secretName: "dashboard-tls", hosts: ["k8s.example.com"] }]);
        expect(v.clusterRoleBinding).toEqual({ create: false });
        expect(reveal<{ roleRef: { name: string } }>(run.byName("kubeadm-cluster-addons-dashboard-login-binding").inputs).roleRef.name).toBe("cluster-admin");
        expect(run.cluster.addons.dashboardUrl).toBe("https://k8s.example.com/");
    });

    test("imageRegistry reaches every add-on image, the smoke test's and flannel's, keeping repository paths and tags", async () => {
        const reg = "mirror.example.cn:5000/k8s";
        const run = await runProgram(rawConfig({ addons: { imageRegistry: reg } }));
        const values = (n: string) => reveal<Record<string, any>>(run.byName(n).inputs).values;
        expect(values("kubeadm-cluster-addons-traefik").image).toEqual({ registry: reg, repository: "traefik", tag: ADDON_IMAGES.traefik.tag });
        expect(values("kubeadm-cluster-addons-headlamp").image).toEqual({ registry: reg, repository: "headlamp-k8s/headlamp", tag: ADDON_IMAGES.headlamp.tag });
        expect(values("kubeadm-cluster-addons-metrics-server").image).toEqual({ repository: `${reg}/metrics-server/metrics-server`, tag: ADDON_IMAGES.metricsServer.tag });
        expect(values("kubeadm-cluster-cni-release").flannel).toEqual({
            image: { repository: `${reg}/flannel-io/flannel` }, flannel_cni: { image: { repository: `${reg}/flannel-io/flannel-cni-plugin` } },
        });
        expect(reveal<string>(run.byName("cp-1-smoke-test").inputs.create)).toContain(`readonly SMOKE_IMAGE='${reg}/e2e-test-images/agnhost:2.63.0'`);
        // the user's chart values still win over the mirror's image locations
        const spec = parseClusterConfig(rawConfig({ addons: { imageRegistry: reg } }), "x");
        expect(cniReleaseValues("flannel", spec.network, reg, { flannel: { image: { tag: "v9" } } })).toMatchObject({ flannel: { image: { repository: `${reg}/flannel-io/flannel`, tag: "v9" } } });
    });

    test("charts.<addon>: mirror repository or local archive; the values the program derives are refused", async () => {
        const archive = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "kubeadm-pulumi-chart-")), "traefik-41.3.0.tgz");
        fs.writeFileSync(archive, "");
        const run = await runProgram(rawConfig({ charts: { traefik: { path: archive }, "metrics-server": { repo: "https://charts.example/ms" } } }));
        expect(reveal<{ chart: string }>(run.byName("kubeadm-cluster-addons-traefik").inputs).chart).toBe(archive);
        expect(reveal<{ repositoryOpts: { repo: string } }>(run.byName("kubeadm-cluster-addons-metrics-server").inputs).repositoryOpts.repo).toBe("https://charts.example/ms");
        expect(problemsOf(rawConfig({ charts: { traefik: { values: { hostNetwork: false } } } }))).toEqual([
            { path: "charts.traefik.values", message: expect.stringContaining(`sets "hostNetwork"`) },
        ]);
    });

    test("a user-supplied dashboard certificate: its key must be a secret, matches the certificate, and never leaves secret values", async () => {
        const { cert, key } = userCert("k8s.example.com");
        const other = userCert("k8s.example.com");
        const addons = { dashboard: { host: "k8s.example.com", tls: { certificate: cert, key } } };
        // stored in plain text: refused, without quoting it
        const plain = problemsOf(rawConfig({ addons }), ["ssh"]);
        expect(plain).toEqual([{ path: "addons.dashboard.tls.key", message: expect.stringContaining("plain text") }]);
        expect(JSON.stringify(plain)).not.toContain(key.split("\n")[1]);
        // a key of another certificate: refused
        expect(problemsOf(rawConfig({ addons: { dashboard: { tls: { certificate: cert, key: other.key } } } }), ["ssh", "addons"]))
            .toEqual([{ path: "addons.dashboard.tls", message: expect.stringContaining("does not belong") }]);
        // as a secret: no program-issued CA, the user's pair in the TLS Secret, the key secret all the way
        const run = await runProgram(rawConfig({ addons }), { secretKeys: ["ssh", "addons"] });
        expect(run.resources.filter((r) => r.name.includes("ingress-ca") || r.name.includes("dashboard-key"))).toEqual([]);
        expect(run.cluster.addons.ingressCaCertificate).toBeUndefined();
        const secret = run.byName("kubeadm-cluster-addons-dashboard-tls");
        expect(reveal<{ stringData: Record<string, string> }>(secret.inputs).stringData["tls.key"]).toBe(key);
        const body = key.split("\n")[1];
        for (const r of run.resources) expect(plainStrings(r.inputs).some((s) => s.includes(body))).toBe(false);
    });

    test.each([
        [{ ingress: { exposure: "hostPort" } }, "addons.ingress.exposure", `"hostPort" is not one of "hostNetwork" or "nodePort"`],
        [{ ingress: { nodes: ["worker-9"] } }, "addons.ingress.nodes[0]", "is not a host"],
        [{ ingress: { exposure: "nodePort", ports: { http: 8080 } } }, "addons.ingress.ports.http", "NodePort range"],
        [{ ingress: false, dashboard: { enabled: true } }, "addons.dashboard.enabled", "published through the ingress"],
        [{ dashboard: { host: "https://dash" } }, "addons.dashboard.host", "not a DNS host name"],
        [{ dashboard: { access: "admin" } }, "addons.dashboard.access", `not one of "view" or "cluster-admin"`],
        [{ dashboard: { tls: { certificate: "x" } } }, "addons.dashboard.tls", "needs both"],
        [{ imageRegistry: "https://mirror" }, "addons.imageRegistry", "without a scheme"],
        [{ metricServer: true }, "addons.metricServer", `did you mean "metricsServer"?`],
        [{ smokeTest: "yes" }, "addons.smokeTest", "must be an object"],
    ])("refused: %j", (addons, at, message) => {
        const problems = problemsOf(rawConfig({ addons }));
        expect(problems).toContainEqual({ path: at, message: expect.stringContaining(message) });
    });

    test("pure values agree with what the components register", async () => {
        const raw = rawConfig();
        const spec = parseClusterConfig(raw, "kubeadm-cluster");
        const run = await runProgram(raw);
        const values = (n: string) => reveal<Record<string, any>>(run.byName(n).inputs).values;
        expect(values("kubeadm-cluster-addons-traefik")).toEqual(traefikValues(spec));
        expect(values("kubeadm-cluster-addons-headlamp")).toEqual(headlampValues(spec));
        expect(values("kubeadm-cluster-addons-metrics-server")).toEqual(metricsServerValues(spec));
        expect(crypto.randomBytes(1).length).toBe(1);
    });
});

void SECRET_MARKERS;
