/**
 * Real-engine tier, add-ons half: the objects the program builds around its
 * add-ons, judged by the REAL kube-apiserver v1.36.4 (built from its Go
 * module, tests/engine/build-tools.sh), and the charts' values judged by the
 * real charts where the Go module proxy serves them, rendered by the real Helm.
 *
 *   1. every plain Kubernetes object the program registers (Namespaces,
 *      ServiceAccount, the TLS and service-account-token Secrets, the
 *      ClusterRoleBinding), taken from the program run under the mock harness
 *      for four configurations, server-side applied; the token Secret is
 *      filled in by the real token controller and the token logs in with
 *      exactly the configured access;
 *   2. the smoke test's own manifests, printed by its bash functions, applied
 *      as the step applies them;
 *   3. the Gateway API CRDs of the pinned release (sigs.k8s.io/gateway-api
 *      module zip) installed and Established; a Gateway and HTTPRoute of the
 *      shape the Traefik chart makes accepted;
 *   4. metrics-server's chart (sigs.k8s.io/metrics-server module zip) rendered
 *      with the program's values, the result dry-run; Traefik's chart at the
 *      version the proxy serves (not the pinned one, see README) likewise,
 *      and its pod admitted by Pod Security under the namespace label the
 *      program picks. Headlamp's chart cannot be had here (README).
 *
 * Each check has a deliberately broken counterpart the API server refuses.
 */
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import { parseClusterConfig, RawConfig } from "../../components/config";
import { metricsServerValues, traefikValues } from "../../components/addons/values";
import { smokeTestCall } from "../../components/addons";
import { ADDON_CHARTS, ADDON_IMAGES, GATEWAY_API } from "../../components/versions";
import { Run, SECRET_MARKERS, UNKNOWN, rawConfig, reveal, runProgram } from "../harness";
import { Availability, tier } from "../tier";
import { CONTROL_PLANE_TOOLS, ControlPlane, ROOT, startControlPlane } from "./control-plane";

type Obj = Record<string, any>;

/** Helm as the cluster tier builds it (tests/cluster/build.sh HELM_VERSION), reused from its cache or built here. */
const HELM_VERSION = /^HELM_VERSION=(\S+)/m.exec(fs.readFileSync(path.join(ROOT, "tests/cluster/build.sh"), "utf8"))![1];
/** The version of Traefik's chart the Go module proxy serves (the pinned one is refused, see README). */
const TRAEFIK_CHART_ON_PROXY = "v41.6.0+incompatible";
const GO_MODULES = {
    gatewayApi: `sigs.k8s.io/gateway-api@${GATEWAY_API.version}`,
    metricsServer: `sigs.k8s.io/metrics-server@${ADDON_IMAGES.metricsServer.tag}`,
    traefikChart: `github.com/traefik/traefik-helm-chart@${TRAEFIK_CHART_ON_PROXY}`,
};

const ADDONS_CACHE = path.join(ROOT, ".cache/engine/addons");
let helm = "";
const modDir: Record<string, string> = {};

function findHelm(): string | undefined {
    const want = `v${HELM_VERSION}`;
    for (const cand of [path.join(ROOT, ".cache/cluster/bin/helm/helm"), path.join(ROOT, ".cache/cluster/bin/helm"), path.join(ADDONS_CACHE, "bin/helm")]) {
        if (!fs.existsSync(cand) || !fs.statSync(cand).isFile()) continue;
        const v = spawnSync(cand, ["version", "--template", "{{.Version}}"], { encoding: "utf8" });
        if (v.stdout.trim() === want) return cand;
    }
    // Build it the way tests/cluster/build.sh does, into this file's own cache directory.
    const r = spawnSync("go", ["install", "-trimpath", "-ldflags", `-s -w -X helm.sh/helm/v3/internal/version.version=${want}`, `helm.sh/helm/v3/cmd/helm@${want}`], {
        encoding: "utf8", timeout: 30 * 60 * 1000, env: { ...process.env, GOBIN: path.join(ADDONS_CACHE, "bin"), GOFLAGS: "-p=2", CGO_ENABLED: "0" },
    });
    return r.status === 0 ? path.join(ADDONS_CACHE, "bin/helm") : undefined;
}

/** `go mod download` of a module: its extracted directory in the Go module cache. */
function goModule(mod: string): string {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "kp-gomod-"));
    const r = spawnSync("go", ["mod", "download", "-json", mod], { cwd: tmp, encoding: "utf8", timeout: 10 * 60 * 1000, env: { ...process.env, GOFLAGS: "-mod=mod" } });
    fs.rmSync(tmp, { recursive: true, force: true });
    const info = JSON.parse(r.stdout || "{}");
    if (r.status !== 0 || !info.Dir) throw new Error(`go mod download ${mod}: ${info.Error ?? r.stderr}`);
    return info.Dir;
}

function ensure(): Availability {
    if (process.platform !== "linux" || process.getuid?.() !== 0) return { ok: false, why: "needs Linux and root" };
    const r = spawnSync("bash", [path.join(__dirname, "build-tools.sh"), "--only", CONTROL_PLANE_TOOLS.join(","), "--require-all"], {
        encoding: "utf8", timeout: 40 * 60 * 1000,
    });
    if (r.status !== 0) return { ok: false, why: `build-tools.sh failed: ${(r.stdout + r.stderr).split("\n").slice(-8).join("\n")}` };
    helm = findHelm() ?? "";
    if (!helm) return { ok: false, why: `helm v${HELM_VERSION} is neither cached nor buildable` };
    try {
        for (const [k, m] of Object.entries(GO_MODULES)) modDir[k] = goModule(m);
    } catch (e) {
        return { ok: false, why: (e as Error).message };
    }
    return { ok: true };
}

const engine = tier("engine tools", "tests/engine/addons.test.ts", ensure());

const raw = (o: Partial<RawConfig> = {}) => rawConfig({ ssh: { user: "root", privateKey: SECRET_MARKERS.sshKey }, ...o });

/** A self-signed certificate and key for `host` made by openssl (a user's own dashboard certificate). */
function userCert(host: string): { cert: string; key: string } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kp-usercert-"));
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", `/CN=${host}`,
        "-addext", `subjectAltName=DNS:${host}`, "-days", "30", "-keyout", "k.pem", "-out", "c.pem"], { cwd: dir, stdio: "pipe" });
    const out = { cert: fs.readFileSync(path.join(dir, "c.pem"), "utf8"), key: fs.readFileSync(path.join(dir, "k.pem"), "utf8") };
    fs.rmSync(dir, { recursive: true, force: true });
    return out;
}

const KIND_ORDER = ["Namespace", "ServiceAccount", "Secret", "ClusterRoleBinding"];

/** Every plain Kubernetes object the program registered (charts excluded), as the manifest its inputs describe, secrets revealed. */
function programObjects(run: Run): Obj[] {
    const objs = run.resources
        .filter((r) => r.type.startsWith("kubernetes:") && !r.type.startsWith("kubernetes:helm.sh/"))
        .map((r) => reveal<Obj>(r.inputs));
    for (const o of objs) {
        if (JSON.stringify(o).includes(UNKNOWN)) throw new Error(`${o.kind} ${o.metadata?.name} has an unknown input under mocks`);
    }
    return objs.sort((a, b) => KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind));
}

const stream = (objs: Obj[]) => objs.map((o) => YAML.stringify(o)).join("---\n");
const docs = (text: string): Obj[] => YAML.parseAllDocuments(text).map((d) => d.toJS()).filter((o) => o && o.kind);
const out = (r: { status: number | null; stdout: string; stderr: string }) => ({ status: r.status, out: (r.stdout + r.stderr).trim().slice(-2000) });
/** Success; on failure the diff shows the tool's output. */
const OK = { status: 0, out: expect.any(String) };

const SCRIPTS = path.join(ROOT, "components/scripts");
const bashArr = (a: string[]) => `(${a.map((s) => `'${s.replace(/'/g, `'\\''`)}'`).join(" ")})`;
const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
/** Source lib.sh and the step file (its trailing `kp_step main` neutralised), set the step's variables, run `fn`. */
function smoke(vars: Record<string, unknown>, ns: string, fn: string): string {
    const decl = Object.entries(vars).map(([k, v]) => `${k}=${Array.isArray(v) ? bashArr(v.map(String)) : q(String(v))}`);
    const r = spawnSync("bash", ["-c", [
        "set -euo pipefail", `source ${q(path.join(SCRIPTS, "lib.sh"))}`, "kp_step() { :; }", `source ${q(path.join(SCRIPTS, "smoke-test.sh"))}`,
        ...decl, `SMOKE_NS=${q(ns)}`, fn,
    ].join("\n")], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`bash: ${r.stderr}`);
    return r.stdout;
}
const smokeManifest = (vars: Record<string, unknown>, ns: string) => smoke(vars, ns, "smoke_manifest");

engine.describe("the real kube-apiserver v1.36.4 judges what the program builds for its add-ons", () => {
    let cp: ControlPlane;
    let dir: string;
    const apply = (objs: Obj[] | string, ...extra: string[]) =>
        cp.kubectl(["apply", "--server-side", "--field-manager=kubeadm-pulumi-test", ...extra, "-f", "-"], typeof objs === "string" ? objs : stream(objs));
    const dryRun = (objs: Obj[] | string) => apply(objs, "--dry-run=server");
    const getJson = (...args: string[]) => {
        const r = cp.kubectl(["get", ...args, "-o", "json"]);
        if (r.status !== 0) throw new Error(r.stderr);
        return JSON.parse(r.stdout);
    };
    /** A kubeconfig that logs in with a bearer token against this API server. */
    const tokenConf = (token: string) => {
        const f = path.join(dir, `token-${Date.now()}.conf`);
        fs.writeFileSync(f, YAML.stringify({
            apiVersion: "v1", kind: "Config", "current-context": "t",
            clusters: [{ name: "c", cluster: { server: `https://${cp.apiIp}:6443`, "certificate-authority": path.join(cp.pki, "ca.crt") } }],
            users: [{ name: "u", user: { token } }],
            contexts: [{ name: "t", context: { cluster: "c", user: "u" } }],
        }));
        return f;
    };

    beforeAll(async () => {
        engine.require();
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "kubeadm-pulumi-engine-addons-"));
        cp = await startControlPlane(dir, {
            netns: `kp-engine-addons-${process.pid}`,
            apiIp: "10.213.251.2",
            // the token controller fills service-account-token Secrets; the aggregation
            // controller fills the aggregated `view` ClusterRole the dashboard login binds to
            controllers: ["serviceaccount-token-controller", "clusterrole-aggregation-controller"],
        });
    }, 10 * 60 * 1000);

    afterAll(async () => {
        await cp?.stop();
    });

    describe("1. the program's own objects, from the program run under mocks", () => {
        const cert = userCert("k8s.example.com");
        const VARIANTS: [string, () => Promise<Run>][] = [
            ["defaults (hostNetwork ingress, view access, the program's own certificate)", () => runProgram(raw())],
            ["nodePort exposure", () => runProgram(raw({ addons: { ingress: { exposure: "nodePort", ports: { http: 30080, https: 30443 } } } }))],
            ["a user-supplied dashboard certificate", () => runProgram(raw({ addons: { dashboard: { host: "k8s.example.com", tls: { certificate: cert.cert, key: cert.key } } } }),
                { secretKeys: ["ssh", "addons"] })],
            ["cluster-admin access", () => runProgram(raw({ addons: { dashboard: { access: "cluster-admin" } } }))],
        ];
        const runs = new Map<string, Obj[]>();
        const objectsOf = async (name: string) => {
            if (!runs.has(name)) runs.set(name, programObjects(await VARIANTS.find(([n]) => n === name)![1]()));
            return runs.get(name)!;
        };

        test.each(VARIANTS)("server-side apply of every object succeeds: %s", async (name) => {
            const objs = await objectsOf(name);
            expect(objs.map((o) => o.kind).sort()).toEqual(["ClusterRoleBinding", "Namespace", "Namespace", "Namespace", "Secret", "Secret", "ServiceAccount"]);
            // roleRef is immutable (see the test below): each variant starts from no binding, as a replacement would
            cp.kubectl(["delete", "clusterrolebinding", "kubeadm-pulumi:dashboard-login:view", "kubeadm-pulumi:dashboard-login:cluster-admin", "--ignore-not-found"]);
            expect(out(apply(objs))).toEqual(OK);
            for (const o of objs) {
                const got = getJson(o.kind.toLowerCase(), o.metadata.name, ...(o.metadata.namespace ? ["-n", o.metadata.namespace] : []));
                expect(got.metadata.labels ?? {}).toMatchObject(o.metadata.labels ?? {});
                if (o.stringData) {
                    // stringData is write-only: the API server moved it into data
                    for (const [k, v] of Object.entries(o.stringData)) expect(Buffer.from(got.data[k], "base64").toString()).toBe(v);
                }
                if (o.roleRef) expect(got.roleRef).toEqual(o.roleRef);
            }
            const tlsSecret = objs.find((o) => o.type === "kubernetes.io/tls")!;
            if (name.includes("user-supplied")) expect(tlsSecret.stringData["tls.crt"]).toBe(cert.cert);
        });

        test("the token controller fills the login token the program's dashboardToken output reads; it logs in with exactly the configured access", async () => {
            for (const [name, access] of [[VARIANTS[0][0], "view"], [VARIANTS[3][0], "cluster-admin"]] as const) {
                const objs = await objectsOf(name);
                cp.kubectl(["delete", "clusterrolebinding", "kubeadm-pulumi:dashboard-login:view", "kubeadm-pulumi:dashboard-login:cluster-admin", "--ignore-not-found"]);
                cp.kubectl(["-n", "headlamp", "delete", "secret", "dashboard-login-token", "--ignore-not-found"]);
                expect(out(apply(objs))).toEqual(OK);
                let token = "";
                const deadline = Date.now() + 60000;
                while (!token && Date.now() < deadline) {
                    const s = getJson("-n", "headlamp", "secret", "dashboard-login-token");
                    // what index.ts decodes: data.token, base64
                    token = Buffer.from(s.data?.token ?? "", "base64").toString("utf8");
                    if (!token) await new Promise((r) => setTimeout(r, 500));
                }
                expect(token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
                const claims = JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());
                expect(claims["kubernetes.io/serviceaccount/service-account.name"]).toBe("dashboard-login");
                const conf = tokenConf(token);
                const who = cp.kubectl(["--kubeconfig", conf, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"]);
                expect(out(who)).toEqual({ status: 0, out: "system:serviceaccount:headlamp:dashboard-login" });
                const can = (...a: string[]) => cp.kubectl(["--kubeconfig", conf, "auth", "can-i", ...a]).stdout.trim();
                // the aggregated view role may take a moment to be filled by its controller
                const until = Date.now() + 30000;
                while (can("list", "pods", "-A") !== "yes" && Date.now() < until) await new Promise((r) => setTimeout(r, 500));
                expect({ access, listPods: can("list", "pods", "-A") }).toEqual({ access, listPods: "yes" });
                const admin = access === "cluster-admin" ? "yes" : "no";
                expect({ access, createDeployments: can("create", "deployments", "-n", "default"), readSecrets: can("get", "secrets", "-n", "kube-system") })
                    .toEqual({ access, createDeployments: admin, readSecrets: admin });
            }
        });

        test("changing the access level: roleRef cannot change in place, so the binding's name carries the level and the new one is created beside the old (a create-before-delete replacement)", async () => {
            const view = (await objectsOf(VARIANTS[0][0])).filter((o) => o.kind === "ClusterRoleBinding");
            const clusterAdmin = (await objectsOf(VARIANTS[3][0])).filter((o) => o.kind === "ClusterRoleBinding");
            expect(view[0].metadata.name).toBe("kubeadm-pulumi:dashboard-login:view");
            expect(clusterAdmin[0].metadata.name).toBe("kubeadm-pulumi:dashboard-login:cluster-admin");
            cp.kubectl(["delete", "clusterrolebinding", "kubeadm-pulumi:dashboard-login:view", "kubeadm-pulumi:dashboard-login:cluster-admin", "--ignore-not-found"]);
            expect(apply(view).status).toBe(0);
            // the replacement is created while the old one still exists
            expect(apply(clusterAdmin).status).toBe(0);
            // what a same-named binding would have met: the API server refuses a changed roleRef
            const sameName = structuredClone(clusterAdmin[0]);
            sameName.metadata.name = view[0].metadata.name;
            const r = apply([sameName]);
            expect(r.status).not.toBe(0);
            expect(r.stderr).toMatch(/cannot change roleRef/);
            cp.kubectl(["delete", "clusterrolebinding", "kubeadm-pulumi:dashboard-login:view", "kubeadm-pulumi:dashboard-login:cluster-admin", "--ignore-not-found"]);
        });

        test("the check can fail: broken copies are refused by the API server", async () => {
            const objs = await objectsOf(VARIANTS[0][0]);
            // new names: a create is judged whole (an apply over the stored object would keep its other fields)
            const renamed = (o: Obj) => { const c = structuredClone(o); c.metadata.name += "-broken"; return c; };
            const tls = renamed(objs.find((o) => o.type === "kubernetes.io/tls")!);
            delete tls.stringData["tls.key"];
            const r1 = dryRun([tls]);
            expect(r1.status).not.toBe(0);
            expect(r1.stderr).toMatch(/tls\.key.*Required value/);
            const crb = renamed(objs.find((o) => o.kind === "ClusterRoleBinding")!);
            delete crb.subjects[0].namespace;
            const r2 = dryRun([crb]);
            expect(r2.status).not.toBe(0);
            expect(r2.stderr).toMatch(/subjects\[0\]\.namespace.*Required value/);
            const ns = renamed(objs.find((o) => o.kind === "Namespace")!);
            ns.metadata.labels["pod-security.kubernetes.io/enforce"] = "privilegedd";
            const r3 = dryRun([ns]);
            expect(r3.status).not.toBe(0);
            expect(r3.stderr).toMatch(/pod-security\.kubernetes\.io\/enforce/);
        });
    });

    describe("2. the smoke test's manifests, printed by its own bash functions", () => {
        const PODS = "cp-1=10.244.0.5 worker-1=10.244.1.5 worker-2=10.244.2.5";
        const SMOKE_VARIANTS: [string, Partial<RawConfig>][] = [
            ["defaults: ingress on both workers, dashboard route", {}],
            ["no ingress, no dashboard", { addons: { ingress: { enabled: false }, dashboard: { enabled: false } } }],
            ["IPv6 ingress node, custom DNS domain", {
                hosts: [{ name: "cp-1", address: "192.0.2.10", internalAddress: "fd00::10", roles: ["control-plane", "worker"] }],
                network: { podSubnet: "fd00:10:244::/56", serviceSubnet: "fd00:10:96::/112", dnsDomain: "k8s.internal", cni: "flannel" },
                addons: { ingress: { nodes: ["cp-1"] } },
            }],
        ];

        test.each(SMOKE_VARIANTS)("the Namespace, DaemonSet, Service, Ingress and Job are accepted, applied as the step applies them: %s", (name, o) => {
            const spec = parseClusterConfig(raw(o), "kubeadm-cluster");
            const vars = smokeTestCall(spec).vars;
            const ns = `kubeadm-pulumi-smoke-${SMOKE_VARIANTS.findIndex(([n]) => n === name)}${Date.now() % 100000}`;
            const manifest = smoke(vars, ns, "smoke_manifest");
            const kinds = docs(manifest).map((d) => d.kind);
            const withIngress = (vars.INGRESS_TARGETS as string[]).length > 0;
            expect(kinds).toEqual(["Namespace", "DaemonSet", "Service", ...(withIngress ? ["Ingress"] : [])]);
            // the step's own command: `kubectl apply -f -`
            const a = cp.kubectl(["apply", "-f", "-"], manifest);
            expect(out(a)).toEqual(OK);
            expect(a.stdout).toContain(`namespace/${ns} created`);
            expect(a.stdout).toContain("daemonset.apps/echo created");
            expect(a.stdout).toContain("service/echo created");
            if (withIngress) expect(a.stdout).toContain("ingress.networking.k8s.io/echo created");

            const job = smoke(vars, ns, `smoke_job ${q(PODS)}`);
            expect(out(cp.kubectl(["apply", "-f", "-"], job))).toEqual(OK);
            const got = getJson("-n", ns, "job", "check");
            const c = got.spec.template.spec.containers[0];
            // the YAML block carried the check script intact
            const script = smoke(vars, ns, "smoke_job_script");
            expect(c.args[0].trimEnd()).toBe(script.trimEnd());
            expect(c.image).toBe(vars.SMOKE_IMAGE);
            const env = Object.fromEntries(c.env.map((e: Obj) => [e.name, e.value ?? ""]));
            expect(env).toEqual({
                NAMESPACE: ns, DNS_DOMAIN: spec.network.dnsDomain, PODS,
                INGRESS: (vars.INGRESS_TARGETS as string[]).join(" "), DASHBOARD: vars.DASHBOARD_HOST,
            });
            const ds = getJson("-n", ns, "daemonset", "echo");
            expect(ds.spec.template.spec.containers[0].image).toBe(vars.SMOKE_IMAGE);
        });

        test("the check can fail: the same functions with an empty image or a bad namespace name are refused", () => {
            const spec = parseClusterConfig(raw(), "kubeadm-cluster");
            const vars = { ...smokeTestCall(spec).vars, SMOKE_IMAGE: "" };
            const ns = `kubeadm-pulumi-smoke-bad${Date.now() % 100000}`;
            expect(cp.kubectl(["create", "namespace", ns]).status).toBe(0);
            const r = cp.kubectl(["apply", "--dry-run=server", "-f", "-"], smoke(vars, ns, "smoke_manifest").split("---\n").slice(1).join("---\n"));
            expect(r.status).not.toBe(0);
            expect(r.stderr).toMatch(/containers\[0\]\.image: Required value/);
            const bad = cp.kubectl(["apply", "--dry-run=server", "-f", "-"], smoke(smokeTestCall(spec).vars, "Smoke_NS", "smoke_manifest"));
            expect(bad.status).not.toBe(0);
        });
    });

    describe("3. the Gateway API CRDs of the pinned release", () => {
        const crdDir = () => path.join(modDir.gatewayApi, "config/crd/standard");

        test(`the ${GATEWAY_API.version} standard CRDs install on the pinned Kubernetes and become Established`, () => {
            const files = fs.readdirSync(crdDir()).filter((f) => f.endsWith(".yaml"));
            expect(files).toEqual(expect.arrayContaining(["gateway.networking.k8s.io_gateways.yaml", "gateway.networking.k8s.io_httproutes.yaml", "gateway.networking.k8s.io_gatewayclasses.yaml"]));
            const text = files.map((f) => fs.readFileSync(path.join(crdDir(), f), "utf8")).join("\n---\n");
            // the bundle version the CRDs carry is the pinned one
            for (const d of docs(text).filter((d) => d.kind === "CustomResourceDefinition")) {
                expect(d.metadata.annotations["gateway.networking.k8s.io/bundle-version"]).toBe(GATEWAY_API.version);
                expect(d.metadata.annotations["gateway.networking.k8s.io/channel"]).toBe("standard");
            }
            expect(out(apply(text))).toEqual(OK);
            const w = cp.kubectl(["wait", "--for=condition=Established", "--timeout=60s",
                ...docs(text).filter((d) => d.kind === "CustomResourceDefinition").map((d) => `crd/${d.metadata.name}`)]);
            expect(out(w)).toEqual(OK);
        });

        /** The Gateway the Traefik chart makes (templates/gateway.yaml): class traefik, listener `web` on the entrypoint's port. */
        const gatewayFor = (port: number): Obj[] => [
            { apiVersion: "gateway.networking.k8s.io/v1", kind: "GatewayClass", metadata: { name: "traefik" }, spec: { controllerName: "traefik.io/gateway-controller" } },
            { apiVersion: "gateway.networking.k8s.io/v1", kind: "Gateway", metadata: { name: "traefik-gateway", namespace: "traefik" },
                spec: { gatewayClassName: "traefik", listeners: [{ name: "web", port, protocol: "HTTP" }] } },
            { apiVersion: "gateway.networking.k8s.io/v1", kind: "HTTPRoute", metadata: { name: "echo", namespace: "traefik" },
                spec: { parentRefs: [{ name: "traefik-gateway" }], hostnames: ["echo.example.com"],
                    rules: [{ matches: [{ path: { type: "PathPrefix", value: "/" } }], backendRefs: [{ name: "echo", port: 80 }] }] } },
        ];

        test("a Gateway on the program's hostNetwork http port and an HTTPRoute to it are accepted", () => {
            const spec = parseClusterConfig(raw(), "kubeadm-cluster");
            const v = traefikValues(spec) as Obj;
            const port = v.gateway.listeners.web.port;
            expect(port).toBe(v.ports.web.port);
            expect(out(apply([{ apiVersion: "v1", kind: "Namespace", metadata: { name: "traefik" } }]))).toEqual(OK);
            expect(out(dryRun(gatewayFor(port)))).toEqual(OK);
        });

        test("the check can fail: a listener port out of range, TLS on an HTTP listener and a repeated listener name are refused by the CRDs", () => {
            const bad = gatewayFor(70000);
            expect(dryRun(bad).stderr).toMatch(/spec\.listeners\[0\]\.port/);
            // the CRDs' CEL rules (x-kubernetes-validations), evaluated by the API server
            const tlsOnHttp = gatewayFor(80);
            tlsOnHttp[1].spec.listeners[0].tls = { mode: "Terminate", certificateRefs: [{ name: "dashboard-tls" }] };
            expect(dryRun(tlsOnHttp).stderr).toMatch(/tls must not be specified for protocols \['HTTP'/);
            const twice = gatewayFor(80);
            twice[1].spec.listeners.push({ name: "web", port: 8080, protocol: "HTTP" });
            // (server-side apply's list-map key check answers before the CRD's own "Listener name must be unique" rule)
            expect(dryRun(twice).stderr).toMatch(/duplicate entries for key \[name="web"\]|Listener name must be unique within the Gateway/);
        });
    });

    describe("4. charts rendered by the real Helm with the program's values", () => {
        const helmHome = () => {
            const h = path.join(dir, "helm-home");
            fs.mkdirSync(h, { recursive: true });
            return { HELM_CACHE_HOME: path.join(h, "cache"), HELM_CONFIG_HOME: path.join(h, "config"), HELM_DATA_HOME: path.join(h, "data") };
        };
        const template = (release: string, chartDir: string, ns: string, values: Obj, ...extra: string[]) => {
            const vf = path.join(dir, `${release}-values-${Date.now()}.json`);
            fs.writeFileSync(vf, JSON.stringify(values));
            const r = spawnSync(helm, ["template", release, chartDir, "--namespace", ns, "--kube-version", "v1.36.4", "-f", vf, ...extra], {
                encoding: "utf8", env: { ...process.env, ...helmHome() }, timeout: 120000,
            });
            if (r.status !== 0) throw new Error(`helm template ${release}: ${r.stderr}`);
            return r.stdout;
        };
        /** A Pod made of a workload's pod template: creating it (dry-run) is what Pod Security enforces on. */
        const podOf = (w: Obj): Obj => ({ apiVersion: "v1", kind: "Pod", metadata: { name: `${w.metadata.name}-probe`, namespace: w.metadata.namespace }, spec: w.spec.template.spec });

        describe("metrics-server", () => {
            const chart = () => path.join(modDir.metricsServer, "charts/metrics-server");

            test("the chart in the sigs.k8s.io/metrics-server module is the pinned chart version", () => {
                const c = YAML.parse(fs.readFileSync(path.join(chart(), "Chart.yaml"), "utf8"));
                expect({ name: c.name, version: c.version }).toEqual({ name: "metrics-server", version: ADDON_CHARTS["metrics-server"].version });
            });

            test.each([["the default registry", undefined], ["a mirror", "registry.example.com"]] as const)(
                "rendered with the program's values (%s): CA-checked kubelet TLS, the pinned image; every object accepted by the API server", (_n, mirror) => {
                    const spec = parseClusterConfig(raw(mirror ? { addons: { imageRegistry: mirror } } : {}), "kubeadm-cluster");
                    const rendered = docs(template("metrics-server", chart(), "kube-system", metricsServerValues(spec)));
                    const dep = rendered.find((d) => d.kind === "Deployment")!;
                    const c = dep.spec.template.spec.containers.find((x: Obj) => x.name === "metrics-server");
                    expect(c.args).toContain("--kubelet-certificate-authority=/var/run/secrets/kubernetes.io/serviceaccount/ca.crt");
                    expect(c.args.join(" ")).not.toContain("insecure");
                    const img = ADDON_IMAGES.metricsServer;
                    expect(c.image).toBe(`${mirror ?? img.registry}/${img.repository}:${img.tag}`);
                    // the service-account token (and its ca.crt) is mounted where the flag points
                    expect(dep.spec.template.spec.automountServiceAccountToken ?? true).toBe(true);
                    const r = dryRun(rendered);
                    expect(out(r)).toEqual(OK);
                    expect(r.stdout).toMatch(/deployment\.apps\/metrics-server serverside-applied \(server dry run\)/);
                    expect(r.stdout).toMatch(/apiservice\.apiregistration\.k8s\.io\/v1beta1\.metrics\.k8s\.io serverside-applied/);
                });

            test("the check can fail: a rendered Deployment with a broken selector is refused", () => {
                const spec = parseClusterConfig(raw(), "kubeadm-cluster");
                const rendered = docs(template("metrics-server", chart(), "kube-system", metricsServerValues(spec)));
                const dep = structuredClone(rendered.find((d) => d.kind === "Deployment")!);
                dep.spec.selector.matchLabels = { other: "x" };
                const r = dryRun([dep]);
                expect(r.status).not.toBe(0);
                expect(r.stderr).toMatch(/selector.*does not match template labels|`selector` does not match/);
            });
        });

        describe(`Traefik, chart ${TRAEFIK_CHART_ON_PROXY} (what the proxy serves; the pinned ${ADDON_CHARTS.traefik.version} is refused)`, () => {
            const chart = () => path.join(modDir.traefikChart, "traefik");
            const EXPOSURES: [string, Partial<RawConfig>][] = [
                ["hostNetwork (default)", {}],
                ["nodePort", { addons: { ingress: { exposure: "nodePort", ports: { http: 30080, https: 30443 } } } }],
            ];

            test.each(EXPOSURES)("%s: the chart's schema takes the program's values; every object accepted; its pod admitted by Pod Security in the program's namespace", async (_n, o) => {
                const spec = parseClusterConfig(raw(o), "kubeadm-cluster");
                const run = await runProgram(raw(o));
                const ns = programObjects(run).find((x) => x.kind === "Namespace" && x.metadata.name === "traefik")!;
                expect(out(apply([ns]))).toEqual(OK);
                const rendered = docs(template("traefik", chart(), "traefik", traefikValues(spec), "--api-versions", "gateway.networking.k8s.io/v1"));
                const ds = rendered.find((d) => d.kind === "DaemonSet")!;
                expect(ds.spec.template.spec.hostNetwork ?? false).toBe(spec.addons.ingress.exposure === "hostNetwork");
                const gw = rendered.find((d) => d.kind === "Gateway")!;
                expect(gw.spec.gatewayClassName).toBe("traefik");
                const webPort = ds.spec.template.spec.containers[0].ports.find((p: Obj) => p.name === "web").containerPort;
                expect(gw.spec.listeners.find((l: Obj) => l.name === "web").port).toBe(webPort);
                if (spec.addons.ingress.exposure === "hostNetwork") expect(webPort).toBe(spec.addons.ingress.httpPort);
                else {
                    const svc = rendered.find((d) => d.kind === "Service")!;
                    expect(svc.spec.ports.find((p: Obj) => p.name === "web").nodePort).toBe(spec.addons.ingress.httpPort);
                }
                const r = dryRun(rendered);
                expect(out(r)).toEqual(OK);
                // the pod probe needs the chart's ServiceAccount to exist (ServiceAccount admission)
                expect(out(apply(rendered.filter((d) => d.kind === "ServiceAccount")))).toEqual(OK);
                const pod = dryRun([podOf(ds)]);
                expect(out(pod)).toEqual(OK);
            });

            test("its IngressClass is the cluster default: an Ingress that names no class (users' own; the smoke test names it) gets traefik from the API server", () => {
                const spec = parseClusterConfig(raw(), "kubeadm-cluster");
                const rendered = docs(template("traefik", chart(), "traefik", traefikValues(spec), "--api-versions", "gateway.networking.k8s.io/v1"));
                const cls = rendered.filter((d) => d.kind === "IngressClass");
                expect(cls.map((c) => c.metadata.name)).toEqual(["traefik"]);
                expect(out(apply(cls))).toEqual(OK);
                const ns = `kubeadm-pulumi-smoke-class${Date.now() % 100000}`;
                const manifest = smokeManifest(smokeTestCall(spec).vars, ns).replace(/^  ingressClassName: traefik\n/m, "");
                expect(manifest).not.toContain("ingressClassName");
                expect(out(cp.kubectl(["apply", "-f", "-"], manifest))).toEqual(OK);
                // the DefaultIngressClass admission plugin filled it in
                expect(getJson("-n", ns, "ingress", "echo").spec.ingressClassName).toBe("traefik");
            });

            test("the check can fail: the hostNetwork pod is refused under the baseline label", () => {
                const spec = parseClusterConfig(raw(), "kubeadm-cluster");
                const rendered = docs(template("traefik", chart(), "traefik", traefikValues(spec), "--api-versions", "gateway.networking.k8s.io/v1"));
                const ds = rendered.find((d) => d.kind === "DaemonSet")!;
                expect(cp.kubectl(["create", "namespace", "traefik-baseline"]).status).toBe(0);
                expect(cp.kubectl(["label", "namespace", "traefik-baseline", "pod-security.kubernetes.io/enforce=baseline"]).status).toBe(0);
                const sa = rendered.find((d) => d.kind === "ServiceAccount")!;
                expect(out(apply([{ ...sa, metadata: { ...sa.metadata, namespace: "traefik-baseline" } }]))).toEqual(OK);
                const pod = podOf(ds);
                pod.metadata.namespace = "traefik-baseline";
                const r = dryRun([pod]);
                expect(r.status).not.toBe(0);
                expect(r.stderr).toMatch(/violates PodSecurity "baseline:latest": host namespaces \(hostNetwork=true\)/);
            });
        });
    });
});
