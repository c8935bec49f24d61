/**
 * The program makes a REAL cluster (issue 11): the program's own steps, as
 * the engine model of tests/harness.ts runs them, over SSH on sandbox hosts
 * that run the real components (tests/cluster/build.sh: containerd 2.2,
 * runc, CNI plugins, kubelet, kubeadm, kubectl, the control-plane, CoreDNS,
 * pause and flannel images), installed by the program's prepare step from a
 * local apt repository and pulled from a local registry over TLS that the
 * program's `containerd.registries` trusts. The PKI is real and distinct per
 * resource (harness `realPki`), as @pulumi/tls makes it. The Kubernetes
 * provider's two resources (the CNI's Namespace and helm Release) are played
 * by this test against the real API with the program's own kubeconfig:
 * `helm template` of the recorded chart and values, `kubectl apply
 * --server-side`, then waiting for the rollout as the Release's await does.
 *
 * In order, each its own test: `pulumi up` of one control plane and one worker
 * -> the nodes are Ready with their roles and labels, the CA on the host is the
 * program's, no bootstrap token is left -> pods on both hosts reach each
 * other, a Service and cluster DNS work -> a second `up` changes nothing ->
 * adding a worker runs only its steps and it becomes Ready -> removing it
 * drains, resets and deletes its node -> `pulumi destroy` leaves no
 * Kubernetes or CNI residue on any host.
 *
 * Test-only settings (never program defaults), forced by this machine (cgroup
 * v1, hosts that are containers): kubeadm.kubelet.failCgroupV1 false,
 * kubeadm.ignorePreflightErrors [SystemVerification], kubeadm.kubeProxy
 * conntrack.maxPerCore 0, containerd.restrictOomScoreAdj, preflight.ignore
 * [cgroup].
 */
import { execFile, execFileSync } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import { promisify } from "util";
import * as YAML from "yaml";
import { RawConfig } from "../../components/config";
import { CommandCall, EngineState, ResourceCall, StateEntry, destroy, providerError, rawConfig, runProgram } from "../harness";
import { residueOf } from "../hosts/residue";
import { Sandbox, SandboxHost, sandboxAvailable, startSandbox } from "../hosts/sandbox";
import { tier } from "../tier";
import { Built, Registry, REPO_ROOT, Timings, build, makeRegistryPki, serveDirectory, startRegistry } from "./support";

const run = promisify(execFile);

function availability() {
    const sb = sandboxAvailable();
    if (!sb.ok) return sb;
    try {
        execFileSync("go", ["version"], { stdio: "ignore" });
    } catch {
        return { ok: false, why: "needs Go (tests/cluster/build.sh builds every component from its module)" };
    }
    return { ok: true };
}

const cluster = tier("cluster", "tests/cluster/program.tier.ts", availability());

const REGISTRY_PORT = 5443;
const KUBECTL = path.join(REPO_ROOT, ".cache/engine/bin/kubectl");

interface Execution {
    name: string;
    field: CommandCall["field"];
    host: string;
    start: number;
    end: number;
    code: number;
    stdout: string;
    stderr: string;
}

cluster.describe("the program makes a real cluster on sandbox hosts (its own steps; real containerd, kubelet, kubeadm, images, flannel)", () => {
    const timings = new Timings();
    const executions: Execution[] = [];
    const applied: string[] = [];
    let b: Built;
    let sb: Sandbox;
    let repo: { server: http.Server; port: number };
    let registry: Registry;
    let registryCa: string;
    /** The registry's CA and server keys (removed at the end). */
    let registryPkiDir = "";
    let cp: SandboxHost, w1: SandboxHost, w2: SandboxHost;
    let v: Record<string, string>;
    let state: EngineState = new Map();
    let work: string;
    /** The kubeconfig the program hands its Kubernetes provider (and exports). */
    let kubeconfigFile = "";

    const hostByAddress = (address: string) => {
        const h = sb.hosts.find((x) => x.address === address);
        if (!h) throw new Error(`no sandbox host at ${address}`);
        return h;
    };

    /** A remote command as the command provider runs it: over SSH, stdin fed, a non-zero exit fails the resource with the provider's message. */
    async function execute(call: CommandCall): Promise<{ stdout: string; stderr: string }> {
        const host = hostByAddress(call.connection.host);
        const start = Date.now();
        const r = await sb.ssh(host, call.connection.user, call.command, call.stdin, 20 * 60 * 1000);
        executions.push({ name: call.name, field: call.field, host: host.name, start, end: Date.now(), code: r.code, stdout: r.stdout, stderr: r.stderr });
        if (r.code !== 0) throw new Error(providerError(call.command, r.code, r.stdout + r.stderr));
        return { stdout: r.stdout, stderr: r.stderr };
    }

    /** kubectl on this machine (where Pulumi runs) with the program's kubeconfig. */
    async function kubectl(args: string[], stdin?: string, timeoutMs = 600000): Promise<string> {
        const p = run(KUBECTL, ["--kubeconfig", kubeconfigFile, ...args], { encoding: "utf8", timeout: timeoutMs, maxBuffer: 1 << 26 });
        if (stdin !== undefined) {
            p.child.stdin!.end(stdin);
        }
        try {
            return (await p).stdout;
        } catch (e) {
            const x = e as { stdout?: string; stderr?: string; message: string };
            throw new Error(`kubectl ${args.join(" ")}: ${x.message}\n${x.stdout ?? ""}${x.stderr ?? ""}`);
        }
    }

    /** The manifest of a recorded helm Release, as `helm template` renders its chart with its values. */
    async function renderRelease(inputs: Record<string, unknown>): Promise<string> {
        const values = path.join(work, `values-${inputs.name}.json`);
        fs.writeFileSync(values, JSON.stringify(inputs.values ?? {}));
        const { stdout } = await run(b.bin("helm"), ["template", String(inputs.name), String(inputs.chart), "--namespace", String(inputs.namespace), "-f", values],
            { encoding: "utf8", maxBuffer: 1 << 26 });
        return stdout;
    }

    /** The Kubernetes provider's part, against the real API server. */
    async function applyResource(call: ResourceCall): Promise<Record<string, unknown> | undefined> {
        switch (call.type) {
            case "pulumi:providers:kubernetes":
                fs.writeFileSync(kubeconfigFile, String(call.inputs.kubeconfig), { mode: 0o600 });
                return undefined;
            case "kubernetes:core/v1:Namespace": {
                const doc = { apiVersion: "v1", kind: "Namespace", metadata: call.inputs.metadata };
                await kubectl(["apply", "--server-side", "--field-manager", "pulumi-kubernetes", "-f", "-"], YAML.stringify(doc));
                applied.push(call.name);
                return { metadata: call.inputs.metadata };
            }
            case "kubernetes:helm.sh/v3:Release": {
                const manifest = await renderRelease(call.inputs);
                await kubectl(["apply", "--server-side", "--field-manager", "helm", "-n", String(call.inputs.namespace), "-f", "-"], manifest);
                // The Release's await (skipAwait false): every workload of the chart rolled out.
                for (const doc of YAML.parseAllDocuments(manifest).map((d) => d.toJS()).filter((d) => d && ["DaemonSet", "Deployment"].includes(d.kind))) {
                    await kubectl(["-n", String(call.inputs.namespace), "rollout", "status", `${doc.kind.toLowerCase()}/${doc.metadata.name}`, `--timeout=${call.inputs.timeout ?? 300}s`]);
                }
                applied.push(call.name);
                return { status: { name: call.inputs.name, namespace: call.inputs.namespace, status: "deployed" } };
            }
            default:
                return undefined;
        }
    }

    async function deleteResource(e: StateEntry): Promise<void> {
        if (e.type === "kubernetes:helm.sh/v3:Release") {
            await kubectl(["delete", "--ignore-not-found", "--wait=true", "-n", String(e.inputs.namespace), "-f", "-"], await renderRelease(e.inputs));
        } else if (e.type === "kubernetes:core/v1:Namespace") {
            await kubectl(["delete", "namespace", "--ignore-not-found", "--wait=true", String((e.inputs.metadata as { name: string }).name)]);
        }
    }

    const images = () => ({
        k8s: `${registry.host}/${v.IMAGE_PREFIX}/k8s`,
        flannel: `${registry.host}/${v.IMAGE_PREFIX}/flannel-io/flannel`,
        flannelCni: `${registry.host}/${v.IMAGE_PREFIX}/flannel-io/flannel-cni-plugin`,
    });

    /** The stack config: the control plane and `workers`. */
    function config(workers: SandboxHost[]): RawConfig {
        const img = images();
        return rawConfig({
            hosts: [
                { name: cp.name, address: cp.address, roles: ["control-plane"] },
                ...workers.map((w) => ({ name: w.name, address: w.address, roles: ["worker"], labels: { "example.com/tier": "program" } })),
            ],
            ssh: { user: "kube", privateKey: sb.privateKey },
            kubernetesVersion: v.K8S_VERSION,
            packages: { localRepository: { apt: `http://${sb.gateway}:${repo.port}/ ./` } },
            network: { podSubnet: "10.244.0.0/16", serviceSubnet: "10.96.0.0/12", cni: "flannel" },
            kubeadm: {
                imageRepository: img.k8s,
                // test only: this machine's cgroup v1 (../shared/SANDBOX.md)
                ignorePreflightErrors: ["SystemVerification"],
                kubelet: {
                    failCgroupV1: false,
                    // test only: the hosts' filesystems are this machine's shared disk, whose
                    // fullness the test does not own. The kubelet's default thresholds are
                    // percentages (imagefs.available<15%): a shared disk a little fuller than
                    // that puts every node under DiskPressure, and the kubelet then refuses
                    // every pod that is not critical while the nodes stay Ready. Absolute
                    // thresholds (and no image GC) make the tier depend only on room for itself.
                    evictionHard: { "memory.available": "100Mi", "nodefs.available": "1Gi", "imagefs.available": "1Gi", "nodefs.inodesFree": "1%", "imagefs.inodesFree": "1%" },
                    imageGCHighThresholdPercent: 100,
                },
                // test only: a host that is a container cannot write nf_conntrack_max
                kubeProxy: { conntrack: { maxPerCore: 0 } },
            },
            containerd: { registries: [{ registry: registry.host, ca: registryCa }], restrictOomScoreAdj: true },
            preflight: { ignore: ["cgroup"] },
            // Every add-on image from the local registry through the one override (flannel's too);
            // Traefik's and Headlamp's charts cannot be had offline here (the proxy refuses them).
            addons: { imageRegistry: `${registry.host}/${v.IMAGE_PREFIX}`, ingress: false, metricsServer: true, smokeTest: true },
            charts: {
                flannel: {
                    path: b.chart,
                    values: {
                        // (tags only: the repositories come from addons.imageRegistry; the CNI
                        // plugin image here is built from containernetworking/plugins, see build.sh)
                        flannel: {
                            image: { tag: `v${v.FLANNEL_VERSION}` },
                            flannel_cni: { image: { tag: v.FLANNEL_CNI_IMAGE_TAG } },
                        },
                    },
                },
                "metrics-server": { path: b.metricsServerChart },
            },
        });
    }

    /** `pulumi up` (or preview) of `raw` against the real hosts, from the current state. */
    async function pulumiUp(raw: RawConfig, o: { preview?: boolean } = {}) {
        const mark = executions.length;
        const t0 = Date.now();
        const r = await runProgram(raw, { execute, state, checkReachability: true, realPki: true, applyResource, deleteResource, ...o });
        if (!o.preview) state = r.state;
        return { run: r, ran: executions.slice(mark), seconds: (Date.now() - t0) / 1000 };
    }

    const sh = async (h: SandboxHost, command: string) => {
        const r = await sb.ssh(h, "root", command);
        if (r.code !== 0) throw new Error(`on ${h.name}: ${command}: exit ${r.code}\n${r.stdout}${r.stderr}`);
        return r.stdout;
    };

    /** Poll `f` until it returns a truthy value (bounded); returns it, or throws with the last value. */
    async function until<T>(what: string, f: () => Promise<T>, timeoutMs: number, everyMs = 2000): Promise<T> {
        const deadline = Date.now() + timeoutMs;
        let last: unknown;
        for (;;) {
            try {
                last = await f();
                if (last) return last as T;
            } catch (e) {
                last = e;
            }
            if (Date.now() > deadline) throw new Error(`${what}: not reached within ${timeoutMs / 1000} s; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
            await new Promise((r) => setTimeout(r, everyMs));
        }
    }

    const nodeReady = async () => Object.fromEntries((await kubectl(["get", "nodes", "-o",
        "jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}"]))
        .trim().split("\n").filter((l) => l).map((l) => l.split("=")));

    const stepTimes = (ran: Execution[]) => {
        const t0 = Math.min(...ran.map((e) => e.start));
        return ran.map((e) => `  ${`${e.name}:${e.field}`.padEnd(24)} ${((e.start - t0) / 1000).toFixed(1).padStart(6)} -> ${((e.end - t0) / 1000).toFixed(1).padStart(6)}  (${((e.end - e.start) / 1000).toFixed(1)})`).join("\n");
    };

    beforeAll(async () => {
        cluster.require();
        // Room for three hosts' containers and images, the registry and the repository (about 5 GiB).
        const disk = fs.statfsSync(path.resolve(__dirname, "../.."));
        const freeGiB = (disk.bavail * disk.bsize) / 2 ** 30;
        if (freeGiB < 8) throw new Error(`the cluster tier needs at least 8 GiB free where the repository is, ${freeGiB.toFixed(1)} GiB are: free some space (df -h)`);
        b = await timings.time("build.sh (all components, cached after the first run)", () => build());
        v = b.versions;
        if (!fs.existsSync(KUBECTL)) throw new Error(`${KUBECTL} missing: build.sh builds it through tests/engine/build-tools.sh`);
        work = fs.mkdtempSync(path.join(os.tmpdir(), "kp-program-"));
        kubeconfigFile = path.join(work, "kubeconfig");
        sb = await timings.time("sandbox: boot 3 hosts with real-container support", () =>
            startSandbox(["kp-cp", "kp-w1", "kp-w2"], { realContainers: true, bootTimeoutMs: 120000 }));
        [cp, w1, w2] = sb.hosts;
        repo = await serveDirectory(b.repo, sb.gateway);
        const pki = makeRegistryPki(sb.gateway);
        registryPkiDir = pki.dir;
        registryCa = pki.caCert;
        registry = await startRegistry(b, sb.gateway, REGISTRY_PORT, pki);
    }, 90 * 60 * 1000);

    afterAll(async () => {
        console.log(`[program] timings:\n${timings}`);
        repo?.server.close();
        await registry?.stop();
        if (registryPkiDir && process.env.KP_CLUSTER_KEEP !== "1") fs.rmSync(registryPkiDir, { recursive: true, force: true });
        if (process.env.KP_CLUSTER_KEEP === "1" && sb) {
            console.log(`[program] KP_CLUSTER_KEEP=1: hosts left running; ssh -i ${sb.keyPath} root@${cp.address}; kubeconfig ${kubeconfigFile}`);
            return;
        }
        await sb?.stop();
        if (work) fs.rmSync(work, { recursive: true, force: true });
    }, 180000);

    const failuresOf = (r: { failures: { name: string; error: Error }[] }) =>
        r.failures.map((f) => `${f.name}: ${f.error.message.split("\n").slice(-15).join("\n")}`);
    const noTokens = async () =>
        (await kubectl(["-n", "kube-system", "get", "secrets", "--field-selector", "type=bootstrap.kubernetes.io/token", "-o", "name"])).trim();
    /** What must not change when steps re-run: the services' processes, the static pod manifests, the kubelet's config, the test pods' containers. */
    const fingerprint = async () => {
        const hosts = await Promise.all([cp, w1, w2].map(async (h) => [h.name, (await sh(h, [
            "systemctl show -p MainPID --value containerd kubelet | tr '\\n' ' '",
            "cat /etc/kubernetes/manifests/*.yaml /var/lib/kubelet/config.yaml /etc/containerd/config.toml 2>/dev/null | sha256sum | cut -c1-16",
        ].join("; "))).trim()]));
        const pods = (await kubectl(["get", "pods", "-A", "-o",
            "jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name} {.metadata.uid} {.status.containerStatuses[*].containerID} {.status.containerStatuses[*].restartCount}{\"\\n\"}{end}"]))
            .trim().split("\n")
            // (the smoke test's namespace is deleted without waiting: its pods may still be terminating)
            .filter((l) => !l.startsWith("kubeadm-pulumi-smoke-")).sort();
        return { hosts: Object.fromEntries(hosts), pods };
    };

    test("pulumi up (1 control plane + 2 workers): every step and the CNI succeed, in the program's order, the workers in parallel", async () => {
        const { run: up, ran, seconds } = await timings.time("pulumi up: 1 control plane + 2 workers, flannel", () => pulumiUp(config([w1, w2])));
        console.log(`[program] up in ${seconds.toFixed(1)} s; steps:\n${stepTimes(ran)}`);
        expect(failuresOf(up)).toEqual([]);
        expect(up.errors.map((e) => e.message)).toEqual([]);
        expect(ran.map((e) => e.name).sort()).toEqual(up.commands().map((c) => c.name).sort());
        expect(applied).toEqual(["kubeadm-cluster-cni-namespace", "kubeadm-cluster-cni-release", "kubeadm-cluster-addons-metrics-server"]);
        // the smoke test ran last and passed every check, the metrics API included
        const smoke = ran.find((e) => e.name === `${cp.name}-smoke-test`)!;
        console.log(`[program] smoke test:\n${smoke.stderr.split("\n").filter((l) => /^(ok|FAILED): /.test(l)).join("\n")}`);
        expect(smoke.stdout).toMatch(/^smoke test passed: \d+ checks/m);
        expect(smoke.stderr).toMatch(/^ok: metrics: the metrics API lists all 3 nodes$/m);
        expect(smoke.stderr).toMatch(/^ok: cluster DNS resolves kubernetes\.default\.svc\.cluster\.local$/m);
        expect(smoke.stderr.match(/^ok: pod to pod: /gm)?.length).toBe(3);
        expect(smoke.stderr).not.toMatch(/^FAILED: /m);
        expect(smoke.start).toBeGreaterThanOrEqual(Math.max(...ran.filter((e) => e !== smoke).map((e) => e.end)));
        // nothing of it is left running
        expect((await kubectl(["get", "namespaces", "-l", "kubeadm-pulumi.io/smoke-test", "-o", "jsonpath={range .items[*]}{.status.phase}{\"\\n\"}{end}"])).trim().split("\n").filter((l) => l && l !== "Terminating")).toEqual([]);
        // each step started as soon as its own dependencies were done: no worker waited for the other
        const end = (n: string) => ran.find((e) => e.name === n)!.end;
        for (const c of up.commands()) {
            // (the smoke test waits for the add-on releases too, which are not commands)
            if (c.name.endsWith("-smoke-test")) continue;
            const deps = c.dependsOn.filter((d) => ran.some((e) => e.name === d));
            if (deps.length === 0) continue;
            const started = ran.find((e) => e.name === c.name)!.start;
            expect({ step: c.name, waitedMs: started - Math.max(...deps.map(end)) < 1000 }).toEqual({ step: c.name, waitedMs: true });
        }
        for (const w of [w1, w2]) {
            const other = w === w1 ? w2 : w1;
            for (const step of ["token", "join", "node"]) expect(up.byName(`${w.name}-${step}`).dependsOn.filter((d) => d.startsWith(other.name))).toEqual([]);
        }
    });

    test("the cluster: every node Ready with its roles and labels, the program's CA on the hosts, the API answering through the program's kubeconfig, no bootstrap token left", async () => {
        expect((await kubectl(["get", "--raw", "/readyz"])).trim()).toBe("ok");
        const ready = await timings.time("every node Ready", () => until("every node Ready", async () => {
            const r = await nodeReady();
            return [cp, w1, w2].every((h) => r[h.name] === "True") ? r : false;
        }, 300000, 3000));
        expect(ready).toEqual({ [cp.name]: "True", [w1.name]: "True", [w2.name]: "True" });
        for (const w of [w1, w2]) {
            const labels = JSON.parse(await kubectl(["get", "node", w.name, "-o", "jsonpath={.metadata.labels}"]));
            expect(labels).toMatchObject({ "node-role.kubernetes.io/worker": "", "example.com/tier": "program" });
        }
        const cpLabels = JSON.parse(await kubectl(["get", "node", cp.name, "-o", "jsonpath={.metadata.labels}"]));
        expect(cpLabels).toHaveProperty(["node-role.kubernetes.io/control-plane"]);
        expect(cpLabels).not.toHaveProperty(["node-role.kubernetes.io/worker"]);
        // the CA the hosts trust is the one in the program's state (and kubeconfig)
        const kc = YAML.parse(fs.readFileSync(kubeconfigFile, "utf8"));
        const programCa = Buffer.from(kc.clusters[0].cluster["certificate-authority-data"], "base64").toString();
        for (const h of [cp, w1, w2]) expect({ host: h.name, ca: (await sh(h, "cat /etc/kubernetes/pki/ca.crt")).trim() }).toEqual({ host: h.name, ca: programCa.trim() });
        expect(kc.clusters[0].cluster.server).toBe(`https://${cp.address}:6443`);
        // the admin identity is the program's certificate, in kubeadm:cluster-admins
        expect(await kubectl(["auth", "whoami", "-o", "jsonpath={.status.userInfo.username} {.status.userInfo.groups}"]))
            .toMatch(/^kubernetes-admin .*kubeadm:cluster-admins/);
        // no token is left: each node step deleted the one its join used, init deleted kubeadm's default one
        expect(await noTokens()).toBe("");
        // every kubelet serves the certificate the program issued: it verifies against the cluster CA for the node's address
        const caFile = path.join(work, "cluster-ca.crt");
        fs.writeFileSync(caFile, programCa);
        for (const h of [cp, w1, w2]) {
            const { stdout } = await run("bash", ["-c", `openssl s_client -connect ${h.address}:10250 -CAfile ${caFile} -verify_return_error -verify_ip ${h.address} </dev/null 2>/dev/null | openssl x509 -noout -subject`], { encoding: "utf8" });
            expect({ host: h.name, subject: stdout.trim() }).toEqual({ host: h.name, subject: expect.stringMatching(new RegExp(`O ?= ?system:nodes, CN ?= ?system:node:${h.name}$`)) });
        }
        // the control plane's static pods and the add-ons kubeadm installs run
        await kubectl(["-n", "kube-system", "rollout", "status", "deployment/coredns", "--timeout=300s"]);
        await kubectl(["-n", "kube-system", "rollout", "status", "daemonset/kube-proxy", "--timeout=120s"]);
        await kubectl(["-n", "kube-flannel", "rollout", "status", "daemonset/kube-flannel-ds", "--timeout=120s"]);
        const pods = await kubectl(["-n", "kube-system", "get", "pods", "-o", "jsonpath={range .items[*]}{.metadata.name}={.status.phase}{\"\\n\"}{end}"]);
        for (const c of ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"]) expect(pods).toContain(`${c}-${cp.name}=Running`);
        // the images came from the configured repository (through the registry's CA the program installed)
        const node = await kubectl(["get", "node", w1.name, "-o", "jsonpath={.status.nodeInfo.containerRuntimeVersion} {.status.nodeInfo.kubeletVersion}"]);
        expect(node).toBe(`containerd://${v.CONTAINERD_VERSION} v${v.K8S_VERSION}`);
        expect(await sh(w2, "ctr -n k8s.io images ls -q")).toContain(`${images().k8s}/kube-proxy:v${v.K8S_VERSION}`);
    });

    test("a pod on each worker: they reach each other across hosts, a Service routes to them, cluster DNS resolves", async () => {
        const img = images();
        const server = (name: string, node: string) => [
            "apiVersion: v1", "kind: Pod", "metadata:", `  name: ${name}`, "  labels: { app: kp-whoami }", "spec:", `  nodeName: ${node}`,
            "  containers:", "  - name: coredns", `    image: ${img.k8s}/coredns:v${v.COREDNS_VERSION}`, "    args: [-dns.port, '53']",
        ].join("\n");
        const manifest = [
            server("kp-whoami-w1", w1.name),
            server("kp-whoami-w2", w2.name),
            ["apiVersion: v1", "kind: Service", "metadata:", "  name: kp-whoami", "spec:", "  selector: { app: kp-whoami }",
                "  ports: [{ name: dns-tcp, port: 53, protocol: TCP }]"].join("\n"),
            // the client (an image with bash and getent) on the first worker
            ["apiVersion: v1", "kind: Pod", "metadata:", "  name: kp-client", "spec:", `  nodeName: ${w1.name}`,
                "  containers:", "  - name: client", `    image: ${img.k8s}/kube-proxy:v${v.K8S_VERSION}`, "    command: [sleep, infinity]"].join("\n"),
        ].join("\n---\n") + "\n";
        await kubectl(["apply", "-f", "-"], manifest);
        await timings.time("test pods Ready", () => kubectl(["wait", "--for=condition=Ready", "pod/kp-whoami-w1", "pod/kp-whoami-w2", "pod/kp-client", "--timeout=180s"])
            .catch(async (e) => {
                // why: the pods' states and events, and the nodes' conditions (a kubelet under disk pressure rejects pods yet stays Ready)
                const describe = await kubectl(["describe", "pods", "kp-whoami-w1", "kp-whoami-w2", "kp-client"]).catch((d) => String(d));
                const conditions = await kubectl(["get", "nodes", "-o", "jsonpath={range .items[*]}{.metadata.name}:{range .status.conditions[*]} {.type}={.status}{end}{\"\\n\"}{end}"]).catch((d) => String(d));
                throw new Error(`${e.message}\nnode conditions:\n${conditions}\n${describe.split("\n").filter((l) => /^(Name|Node|Status|Reason|Message):|^\s+(Reason|Message|State):|^\s+(Warning|Normal)\s/.test(l)).join("\n")}`);
            }));
        const ips = Object.fromEntries((await kubectl(["get", "pods", "-o", "jsonpath={range .items[*]}{.metadata.name}={.status.podIP}={.spec.nodeName}{\"\\n\"}{end}"]))
            .trim().split("\n").map((l) => l.split("=")).map(([n, ip, node]) => [n, { ip, node }]));
        expect(ips["kp-whoami-w1"].node).toBe(w1.name);
        expect(ips["kp-whoami-w2"].node).toBe(w2.name);
        const svc = (await kubectl(["get", "svc", "kp-whoami", "-o", "jsonpath={.spec.clusterIP}"])).trim();
        const tcp = (ip: string) => `timeout 5 bash -c 'exec 3<>/dev/tcp/${ip}/53' && echo open || echo closed`;
        const exec = (cmd: string) => kubectl(["exec", "kp-client", "--", "bash", "-c", cmd]);
        // pod on w1 -> pod on w2 (flannel VXLAN across hosts), and the local one
        expect((await exec(tcp(ips["kp-whoami-w2"].ip))).trim()).toBe("open");
        expect((await exec(tcp(ips["kp-whoami-w1"].ip))).trim()).toBe("open");
        // the control plane's host network -> both pods
        for (const p of ["kp-whoami-w1", "kp-whoami-w2"]) expect((await sh(cp, tcp(ips[p].ip))).trim()).toBe("open");
        // a Service (kube-proxy's rules) and cluster DNS through the kube-dns Service
        expect((await exec(tcp(svc))).trim()).toBe("open");
        expect((await exec("getent hosts kubernetes.default.svc.cluster.local")).trim()).toMatch(/^10\.96\.0\.1\s+kubernetes\.default\.svc\.cluster\.local$/);
        expect((await exec("getent hosts kubernetes.default")).trim()).toMatch(/^10\.96\.0\.1\s/);
        expect((await exec("getent hosts kp-whoami")).trim()).toMatch(new RegExp(`^${svc.replace(/\./g, "\\.")}\\s`));
    });

    test("a second pulumi up with no config change changes nothing: no step runs, the preview shows no change", async () => {
        const preview = await pulumiUp(config([w1, w2]), { preview: true });
        expect(preview.run.operations.filter((o) => o.op !== "same")).toEqual([]);
        const appliedBefore = applied.length;
        const { run: again, ran, seconds } = await timings.time("pulumi up again, no change", () => pulumiUp(config([w1, w2])));
        expect(again.failures).toEqual([]);
        expect(again.operations.filter((o) => o.op !== "same")).toEqual([]);
        expect(ran).toEqual([]);
        expect(applied.length).toBe(appliedBefore);
        console.log(`[program] second up: ${seconds.toFixed(1)} s, ${ran.length} steps`);
    });

    test("every step run a second time (a change every step takes: the SSH user) changes nothing on the cluster: same processes, manifests, configs, pods and containers", async () => {
        const before = await fingerprint();
        const raw = config([w1, w2]);
        const asRoot = { ...raw, ssh: { ...(raw.ssh as object), user: "root" } };
        const { run: up, ran, seconds } = await timings.time("pulumi up: every step re-runs (ssh.user)", () => pulumiUp(asRoot));
        console.log(`[program] every step again in ${seconds.toFixed(1)} s; steps:\n${stepTimes(ran)}`);
        expect(failuresOf(up)).toEqual([]);
        expect(ran.map((e) => e.name).sort()).toEqual(up.commands().map((c) => c.name).sort());
        // (a step without an update command runs its create again; nothing is deleted)
        expect(ran.filter((e) => e.field === "delete")).toEqual([]);
        expect((await nodeReady())).toEqual({ [cp.name]: "True", [w1.name]: "True", [w2.name]: "True" });
        expect(await fingerprint()).toEqual(before);
        // the token step made a fresh token; the node step, re-run with it, deleted it again
        expect(await noTokens()).toBe("");
        expect(ran.find((e) => e.name === `${cp.name}-init`)!.stdout).toMatch(/already initialised/);
        // back to the kube user (every step once more)
        expect(failuresOf((await timings.time("pulumi up: every step re-runs (back to ssh.user kube)", () => pulumiUp(config([w1, w2])))).run)).toEqual([]);
    });

    test("scale in: removing a worker drains it, resets it, deletes its node; the host is left clean", async () => {
        const { run: up, ran } = await timings.time("pulumi up: remove a worker", () => pulumiUp(config([w1])));
        expect(failuresOf(up)).toEqual([]);
        expect(ran.filter((e) => e.field === "delete").map((e) => e.name)).toEqual(["node", "join", "token", "scripts"].map((s) => `${w2.name}-${s}`));
        // the one other step: the smoke test, since the nodes it checks changed
        expect(ran.filter((e) => e.field !== "delete").map((e) => e.name)).toEqual([`${cp.name}-smoke-test`]);
        expect(Object.keys(await nodeReady()).sort()).toEqual([cp.name, w1.name].sort());
        // the drain evicted its pod (a bare pod is deleted by drain --force); the Service still routes to the other one
        expect((await kubectl(["get", "pod", "kp-whoami-w2", "--ignore-not-found", "-o", "name"])).trim()).toBe("");
        expect(await residueOf(sb, w2)).toEqual([]);
        expect((await sh(w2, "set -o pipefail; ctr -n k8s.io tasks ls -q | wc -l")).trim()).toBe("0");
        expect((await sh(w2, "systemctl is-active kubelet || true")).trim()).toBe("inactive");
        // containerd never crashed (it exits when the CNI directory it watches is removed)
        expect((await sh(w2, "echo $(systemctl show -p ActiveState --value containerd) $(systemctl show -p NRestarts --value containerd)")).trim()).toBe("active 0");
    });

    test("scale out: the reset host added back runs only its own steps (a fresh token, the join, the node step), rejoins, becomes Ready and runs pods", async () => {
        const { run: up, ran, seconds } = await timings.time("pulumi up: add a worker (the reset host)", () => pulumiUp(config([w1, w2])));
        console.log(`[program] scale-out up in ${seconds.toFixed(1)} s; steps:\n${stepTimes(ran)}`);
        expect(failuresOf(up)).toEqual([]);
        expect(ran.map((e) => e.name).sort()).toEqual([...["scripts", "preflight", "prepare", "token", "join", "node"].map((s) => `${w2.name}-${s}`), `${cp.name}-smoke-test`].sort());
        // (the smoke test is updated: the nodes it checks changed)
        expect(up.operations.filter((o) => o.op !== "same" && o.op !== "create").map((o) => o.name)).toEqual([`${cp.name}-smoke-test`]);
        await until("the worker Ready again", async () => (await nodeReady())[w2.name] === "True", 300000, 3000);
        await kubectl(["-n", "kube-flannel", "rollout", "status", "daemonset/kube-flannel-ds", "--timeout=120s"]);
        const podIp = await until("a pod on the re-added worker", async () => {
            await kubectl(["apply", "-f", "-"], [
                "apiVersion: v1", "kind: Pod", "metadata:", "  name: kp-whoami-w2", "  labels: { app: kp-whoami }", "spec:", `  nodeName: ${w2.name}`,
                "  containers:", "  - name: coredns", `    image: ${images().k8s}/coredns:v${v.COREDNS_VERSION}`, "    args: [-dns.port, '53']", ""].join("\n"));
            await kubectl(["wait", "--for=condition=Ready", "pod/kp-whoami-w2", "--timeout=120s"]);
            return (await kubectl(["get", "pod", "kp-whoami-w2", "-o", "jsonpath={.status.podIP}"])).trim();
        }, 180000, 5000);
        expect((await kubectl(["exec", "kp-client", "--", "bash", "-c", `timeout 5 bash -c 'exec 3<>/dev/tcp/${podIp}/53' && echo open || echo closed`])).trim()).toBe("open");
        expect(await noTokens()).toBe("");
    });

    test("pulumi destroy: every node is drained and reset, the first control plane last; no Kubernetes or CNI residue on any host", async () => {
        expect(await residueOf(sb, w1)).toEqual(expect.arrayContaining(["path /etc/kubernetes", "link cni0", "link flannel.1", "cni-binary /opt/cni/bin/flannel", expect.stringMatching(/^path \/etc\/cni\/net\.d: .*10-flannel\.conflist/)]));
        const mark = executions.length;
        const done = await timings.time("pulumi destroy", () => destroy(state, execute, deleteResource));
        const ran = executions.slice(mark);
        expect(ran.filter((e) => e.code !== 0).map((e) => `${e.name}: ${e.stderr.slice(-2000)}`)).toEqual([]);
        // The CNI is retained on delete (it goes with the nodes' reset and etcd): no API call, no wait.
        expect(done.map((d) => d.name).filter((n) => n.includes("-cni-"))).toEqual([]);
        expect(ran[ran.length - 1].name).toBe(`${cp.name}-scripts`);
        console.log(`[program] destroy steps:\n${stepTimes(ran)}`);
        for (const e of ran.filter((x) => x.name.endsWith("-join") || x.name.endsWith("-init"))) console.log(`[program] ${e.name} delete said:\n${e.stdout}${e.stderr.split("\n").slice(-12).join("\n")}`);
        for (const h of [cp, w1, w2]) {
            expect({ host: h.name, residue: await residueOf(sb, h) }).toEqual({ host: h.name, residue: [] });
            expect({ host: h.name, tasks: (await sh(h, "set -o pipefail; ctr -n k8s.io tasks ls -q | wc -l")).trim() }).toEqual({ host: h.name, tasks: "0" });
            expect({ host: h.name, kubelet: (await sh(h, "systemctl is-active kubelet || true")).trim() }).toEqual({ host: h.name, kubelet: "inactive" });
            // the runtime keeps running, as before the cluster
            expect({ host: h.name, containerd: (await sh(h, "echo $(systemctl show -p ActiveState --value containerd) $(systemctl show -p NRestarts --value containerd)")).trim() })
                .toEqual({ host: h.name, containerd: "active 0" });
            // the runtime and the held packages stay (teardown removes the cluster, not what prepare installed)
            expect((await sh(h, "dpkg-query -W -f='${Status}' kubeadm containerd.io")).trim()).toBe("hold ok installedhold ok installed");
        }
    });

    test("stopping the hosts leaves no process, cgroup or network namespace of theirs on this machine", async () => {
        if (process.env.KP_CLUSTER_KEEP === "1") return;
        const cgroups = sb.hosts.flatMap((h) => h.cgroups);
        expect(cgroups.length).toBeGreaterThan(0);
        await timings.time("sandbox stop (3 hosts)", () => sb.stop());
        expect(cgroups.filter((d) => fs.existsSync(d))).toEqual([]);
        const names = sb.hosts.map((h) => h.name).join("|");
        expect(execFileSync("sh", ["-c", `ls /run/netns | grep -E '^sb-(${names})$' || true`], { encoding: "utf8" }).trim()).toBe("");
    });
});
