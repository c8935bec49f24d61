/**
 * The offline plan (`npm run plan`): its step graph is the graph the real
 * components register, it shows the command texts they register, it runs on
 * the example stacks from their files alone, no secret reaches it, an invalid
 * config exits non-zero with the problem's path, and the README's picture is
 * the one the code draws.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import { CONFIG_KEYS, parseClusterConfig, RawConfig } from "../components/config";
import { planSteps } from "../components/plan";
import { PlanGraph, planGraph, renderDot, renderMermaid } from "../components/planGraph";
import { ADDON_SECTIONS, PlanSection, fence, planSections, renderPlan } from "../components/planReport";
import { readStackConfig } from "../components/stackFile";
import { README_STACK, loadStack, main, readmeGraphBlock, stacksIn, withReadmeGraph } from "../components/cli/plan";
import { Run, SECRET_MARKERS, rawConfig, reveal, runProgram } from "./harness";

const ROOT = path.resolve(__dirname, "..");
const PROJECT_YAML = fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8");

/** The registered resource -> the graph box that stands for it. */
function boxOf(graph: PlanGraph): Map<string, string> {
    return new Map(graph.nodes.flatMap((n) => n.resources.map((r) => [r, n.id] as [string, string])));
}

/** Every box's ordering predecessors must be exactly the boxes of what its resources depend on. */
function graphMismatches(run: Run, graph: PlanGraph): string[] {
    const box = boxOf(graph);
    const problems: string[] = [];
    for (const r of run.resources) {
        if (r.type === "command:remote:Command" && !box.has(r.name)) problems.push(`command ${r.name} has no box`);
        if (r.dependsOn.length > 0 && !box.has(r.name)) problems.push(`${r.name} (${r.type}) depends on ${r.dependsOn.join(", ")} but has no box`);
    }
    for (const n of graph.nodes) {
        const registered = n.resources.map((name) => run.resources.find((r) => r.name === name));
        registered.forEach((r, i) => { if (!r) problems.push(`box ${n.id}: no resource ${n.resources[i]} is registered`); });
        const deps = new Set<string>();
        for (const r of registered) {
            for (const d of r?.dependsOn ?? []) {
                if (n.resources.includes(d)) continue;
                const b = box.get(d);
                if (b === undefined) problems.push(`box ${n.id}: ${r!.name} depends on ${d}, which has no box`);
                else deps.add(b);
            }
        }
        const drawn = new Set(graph.edges.filter((e) => e.to === n.id && e.kind !== "data").map((e) => e.from));
        const sorted = (s: Set<string>) => [...s].sort().join(", ");
        if (n.resources.length > 0 && sorted(deps) !== sorted(drawn)) problems.push(`box ${n.id}: drawn after [${sorted(drawn)}], registered after [${sorted(deps)}]`);
    }
    return problems;
}

describe("the step graph is the program's", () => {
    test.each([
        ["1 control plane + 2 workers", rawConfig()],
        ["3 control planes + a worker, a load balancer, calico", rawConfig({
            hosts: [
                ...[1, 2, 3].map((i) => ({ name: `cp-${i}`, address: `192.0.2.${10 + i}`, roles: ["control-plane"] })),
                { name: "w-1", address: "192.0.2.20", roles: ["worker"] },
            ],
            apiServer: { address: "192.0.2.100" },
            network: { cni: "calico" },
        })],
        ["a single schedulable control plane, no CNI", rawConfig({
            hosts: [{ name: "solo", address: "192.0.2.10", roles: ["control-plane", "worker"] }],
            network: { cni: "none" },
        }, 0)],
    ])("%s: every ordering edge drawn is a registered dependency, and every dependency is drawn", async (_label, raw) => {
        const run = await runProgram(raw);
        const graph = planGraph(parseClusterConfig(raw, "kubeadm-cluster"));
        expect(graphMismatches(run, graph)).toEqual([]);
    });

    test("the comparison notices a missing or an extra edge", async () => {
        const raw = rawConfig();
        const run = await runProgram(raw);
        const graph = planGraph(parseClusterConfig(raw, "kubeadm-cluster"));
        const missing = { ...graph, edges: graph.edges.filter((e) => !(e.from === "cp-1-init" && e.to === "worker-1-token")) };
        expect(graphMismatches(run, missing)).toEqual([expect.stringContaining("box worker-1-token: drawn after [worker-1-prepare], registered after [cp-1-init, worker-1-prepare]")]);
        const extra = { ...graph, edges: [...graph.edges, { from: "worker-1-node", to: "worker-2-token", kind: "order" as const }] };
        expect(graphMismatches(run, extra)).toEqual([expect.stringContaining("box worker-2-token")]);
    });

    test("Mermaid and DOT draw every box and edge", () => {
        const graph = planGraph(parseClusterConfig(rawConfig(), "kubeadm-cluster"));
        const mermaid = renderMermaid(graph);
        const dot = renderDot(graph);
        expect(mermaid.split("\n")[0]).toBe("flowchart TD");
        const mermaidEdges = mermaid.split("\n").filter((l) => /(-->|-\.->|==>)/.test(l));
        expect(mermaidEdges).toHaveLength(graph.edges.length);
        expect(dot.split("\n").filter((l) => l.includes(" -> "))).toHaveLength(graph.edges.length);
        for (const n of graph.nodes) {
            expect(mermaid).toContain(`n_${n.id.replace(/-/g, "_")}[`);
            expect(dot).toContain(`"${n.id}" [label=`);
        }
        expect(mermaid).toContain('n_cp_1_preflight -.-> n_worker_2_prepare');
        expect(dot).toContain('"cp-1-preflight" -> "worker-2-prepare" [style=dotted]');
    });
});

/** A project directory holding Pulumi.yaml and the given stack files. */
function project(stacks: Record<string, string>): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kp-plan-"));
    fs.writeFileSync(path.join(dir, "Pulumi.yaml"), PROJECT_YAML);
    for (const [name, text] of Object.entries(stacks)) fs.writeFileSync(path.join(dir, `Pulumi.${name}.yaml`), text);
    return dir;
}

/** `npm run plan` as a process: exit status, its output and the files it wrote. */
function planCli(dir: string, ...args: string[]): { status: number | null; output: string; files: Record<string, string> } {
    const tsNode = path.join(ROOT, "node_modules", ".bin", "ts-node");
    const r = spawnSync(tsNode, ["--transpile-only", path.join(ROOT, "components", "cli", "plan.ts"), "--dir", dir, ...args], { encoding: "utf8", cwd: dir });
    const out = path.join(dir, "plan");
    const files = fs.existsSync(out) ? Object.fromEntries(fs.readdirSync(out).map((f) => [f, fs.readFileSync(path.join(out, f), "utf8")])) : {};
    return { status: r.status, output: `${r.stdout}${r.stderr}`, files };
}

/** The decoded config of a stack file, as a test hands it to the mocked program (with the test SSH key). */
function programConfig(stackYaml: string): RawConfig {
    const cfg = readStackConfig(PROJECT_YAML, stackYaml, "t");
    const raw: Record<string, unknown> = {};
    for (const k of CONFIG_KEYS) {
        const v = cfg.raw[k];
        if (typeof v !== "string") continue;
        try { raw[k] = JSON.parse(v); } catch { raw[k] = v; }
    }
    raw.ssh = { ...(raw.ssh as object), privateKey: SECRET_MARKERS.sshKey };
    return raw as RawConfig;
}

/** The ciphertexts and salts a stack file holds (never to be shown). */
function encryptedTexts(stackYaml: string): string[] {
    const out: string[] = [];
    const walk = (v: unknown) => {
        if (Array.isArray(v)) v.forEach(walk);
        else if (v && typeof v === "object") for (const [k, x] of Object.entries(v)) (k === "secure" && typeof x === "string" ? out.push(x) : walk(x));
    };
    const doc = YAML.parse(stackYaml) ?? {};
    walk(doc);
    for (const k of ["encryptionsalt", "encryptedkey"]) if (typeof doc[k] === "string") out.push(doc[k]);
    return out;
}

describe.each(stacksIn(ROOT))("the example stack %s", (stack) => {
    const stackYaml = fs.readFileSync(path.join(ROOT, `Pulumi.${stack}.yaml`), "utf8");
    let md: string;
    beforeAll(() => {
        const { spec, notes } = loadStack(ROOT, stack);
        md = renderPlan(stack, spec, notes);
    });

    test("has a plan with each host's steps in the order they run, with the command texts the components register", async () => {
        const raw = programConfig(stackYaml);
        const spec = parseClusterConfig(raw, "kubeadm-cluster");
        const steps = planSteps(spec);
        for (const h of spec.hosts) {
            const at = steps.filter((s) => s.host === h.name).map((s) => md.indexOf(`\n#### ${s.name}\n`));
            expect(at.every((i) => i > 0)).toBe(true);
            expect([...at].sort((a, b) => a - b)).toEqual(at);
        }
        // tests/plan.test.ts checks planSteps against the components; here the
        // document against what the program registers for this very stack.
        const run = await runProgram(raw);
        expect(run.commands().length).toBe(steps.length);
        for (const c of run.commands()) {
            const inputs = reveal<Record<string, string | undefined>>(c.inputs);
            const section = md.slice(md.indexOf(`\n#### ${c.name}\n`), md.indexOf("\n####", md.indexOf(`\n#### ${c.name}\n`) + 1));
            for (const field of ["create", "update", "delete"] as const) {
                if (inputs[field] !== undefined) expect(section).toContain(fence(inputs[field]!, "sh"));
            }
        }
    });

    test("shows no encrypted value of the stack file, and no private key", () => {
        for (const t of encryptedTexts(stackYaml)) expect(md).not.toContain(t);
        expect(md).not.toMatch(/PRIVATE KEY/);
        expect(md).toContain("<secret: bootstrap token>");
    });

    test("is deterministic", () => {
        const { spec, notes } = loadStack(ROOT, stack);
        expect(renderPlan(stack, spec, notes)).toBe(md);
    });
});

describe("secrets in the stack file", () => {
    const CIPHERTEXT = "v1:SENTINELciphertextAAAAAAAAAAAAAAAAAAAA==";
    const SALT = "v1:SENTINELsaltBBBB=:v1:CCCC:DDDD";
    const base = YAML.parse(fs.readFileSync(path.join(ROOT, `Pulumi.${README_STACK}.yaml`), "utf8"));
    const withSecrets = YAML.stringify({
        encryptionsalt: SALT,
        config: {
            ...base.config,
            "kubeadm-cluster:ssh": { ...base.config["kubeadm-cluster:ssh"], privateKey: { secure: CIPHERTEXT } },
            "other-project:token": { secure: "v1:SENTINELotherAAAAAAAAAAAAAAAAAAA==" },
        },
    });

    test("a secure ssh.privateKey is neither decrypted nor shown, in the files or on the terminal", () => {
        const dir = project({ sec: withSecrets });
        const r = planCli(dir);
        expect(r.output).toContain("plan/sec.md");
        expect(r.status).toBe(0);
        const everything = r.output + Object.values(r.files).join("\n");
        for (const s of [CIPHERTEXT, SALT, "SENTINEL", "PRIVATE KEY"]) expect(everything).not.toContain(s);
        expect(r.files["sec.md"]).toContain("ssh.privateKey is stored as a secret: the plan does not decrypt it");
        expect(r.files["sec.md"]).toContain('token: "<secret: bootstrap token>"');
    });

    test("every secure private key (per host, bastion) gets a stand-in, and none is decrypted or shown", () => {
        const hosts = [...base.config["kubeadm-cluster:hosts"]];
        hosts[1] = { ...hosts[1], privateKey: { secure: CIPHERTEXT } };
        const yaml = YAML.stringify({
            config: {
                ...base.config,
                "kubeadm-cluster:hosts": hosts,
                "kubeadm-cluster:ssh": { ...base.config["kubeadm-cluster:ssh"], privateKey: { secure: CIPHERTEXT }, bastion: { address: "192.0.2.1", privateKey: { secure: CIPHERTEXT } } },
            },
        });
        const dir = project({ keys: yaml });
        const { spec, notes } = loadStack(dir, "keys");
        expect(notes).toContainEqual(expect.stringContaining("hosts[1].privateKey, ssh.privateKey, ssh.bastion.privateKey are stored as a secret"));
        const md = renderPlan("keys", spec, notes);
        expect(md).not.toContain(CIPHERTEXT);
        expect(md).not.toMatch(/PRIVATE KEY/);
    });

    test("a secure dashboard TLS key (the add-ons' one secret) is not decrypted: the plan leaves the pair out and says so", () => {
        const yaml = YAML.stringify({ config: { ...base.config, "kubeadm-cluster:addons": { dashboard: { tls: { certificate: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", key: { secure: CIPHERTEXT } } } } } });
        const cfg = readStackConfig(PROJECT_YAML, yaml, "t");
        expect(cfg.problems).toEqual([]);
        expect(cfg.secretKeys).toContain("addons");
        expect(JSON.stringify(cfg.raw)).not.toContain(CIPHERTEXT);
        const dir = project({ [README_STACK]: yaml });
        const { spec, notes } = loadStack(dir, README_STACK);
        expect(notes).toContainEqual(expect.stringContaining("addons.dashboard.tls.key is stored as a secret"));
        expect(renderPlan(README_STACK, spec, notes)).not.toContain(CIPHERTEXT);
    });

    test("a plain-text ssh.privateKey is refused as pulumi up refuses it, without quoting it", () => {
        const plain = YAML.stringify({ config: { ...base.config, "kubeadm-cluster:ssh": { user: "ubuntu", privateKey: SECRET_MARKERS.sshKey } } });
        const r = planCli(project({ plain }));
        expect(r.status).toBe(1);
        expect(r.output).toContain("ssh.privateKey: is stored in plain text");
        expect(r.output).not.toContain(SECRET_MARKERS.sshKey.split("\n")[1]);
        expect(r.files).toEqual({});
    });

    test("any other secret value is refused with its path (the plan cannot show what runs without it), and its ciphertext is not shown", () => {
        const hosts = [...base.config["kubeadm-cluster:hosts"]];
        hosts[1] = { ...hosts[1], address: { secure: CIPHERTEXT } };
        const r = planCli(project({ bad: YAML.stringify({ config: { ...base.config, "kubeadm-cluster:hosts": hosts } }) }));
        expect(r.status).toBe(1);
        expect(r.output).toContain("  - hosts[1].address: is stored as a secret, so the plan cannot read it without decrypting it: set it in plain text (`pulumi config set --path 'hosts[1].address' <value>`)");
        expect(r.output).not.toContain(CIPHERTEXT);
    });

    test("an ssh setting other than the key stored as a secret is named, not guessed", () => {
        const cfg = readStackConfig(PROJECT_YAML, YAML.stringify({ config: { ...base.config, "kubeadm-cluster:ssh": { user: { secure: CIPHERTEXT }, privateKey: { secure: CIPHERTEXT } } } }), "t");
        expect(cfg.problems).toEqual([{ path: "ssh.user", message: expect.stringContaining("is stored as a secret, so the plan cannot read it") }]);
        expect(JSON.stringify(cfg)).not.toContain(CIPHERTEXT);
    });

    test("ssh stored as one secret cannot be planned: the plan says what to do", () => {
        const r = planCli(project({ whole: YAML.stringify({ config: { ...base.config, "kubeadm-cluster:ssh": { secure: CIPHERTEXT } } }) }));
        expect(r.status).toBe(1);
        expect(r.output).toContain("  - ssh: is stored as a secret, so the plan cannot read it");
        expect(r.output).not.toContain(CIPHERTEXT);
    });
});

describe("npm run plan", () => {
    test("an invalid config prints the program's problem list with each path and exits 1", () => {
        const stack = YAML.stringify({
            config: {
                "kubeadm-cluster:hosts": [{ name: "cp-1", address: "192.0.2.10", roles: ["control-plane"] }],
                "kubeadm-cluster:network": { podSubnet: "10.244.0.0/33", cni: "flanel" },
            },
        });
        const r = planCli(project({ broken: stack }));
        expect(r.status).toBe(1);
        expect(r.output).toContain("plan: stack broken: Invalid stack configuration (2 problems):");
        expect(r.output).toMatch(/ {2}- network\.podSubnet: /);
        expect(r.output).toMatch(/ {2}- network\.cni: .*did you mean "flannel"/);
        expect(r.files).toEqual({});
    });

    test("writes plan/<stack>.md for every stack, the same text as renderPlan, and takes the project's defaults", () => {
        const dev = fs.readFileSync(path.join(ROOT, `Pulumi.${README_STACK}.yaml`), "utf8");
        const noVersion = YAML.stringify({ config: Object.fromEntries(Object.entries(YAML.parse(dev).config).filter(([k]) => k !== "kubeadm-cluster:kubernetesVersion")) });
        const dir = project({ a: dev, b: noVersion });
        const r = planCli(dir);
        expect(r.status).toBe(0);
        expect(Object.keys(r.files).sort()).toEqual(["a.md", "b.md"]);
        const { spec, notes } = loadStack(dir, "a");
        expect(r.files["a.md"]).toBe(renderPlan("a", spec, notes));
        // Pulumi.yaml's `config.kubernetesVersion.default`, as Pulumi applies it
        expect(loadStack(dir, "b").spec.kubernetesVersion).toBe(YAML.parse(PROJECT_YAML).config.kubernetesVersion.default);
        // (in-process: the usage errors need no second process)
        const stderr = jest.spyOn(process.stderr, "write").mockImplementation(() => true);
        try {
            expect(main(["--dir", dir, "--stack", "nope"])).toBe(1);
            expect(main(["--dir", dir, "--frobnicate"])).toBe(2);
            expect(stderr.mock.calls.map((c) => String(c[0]))).toEqual([expect.stringContaining("no stack file"), expect.stringContaining('unknown argument "--frobnicate"')]);
        } finally {
            stderr.mockRestore();
        }
    });

    test("reads local files from the project directory, as Pulumi runs the program there", () => {
        const dev = YAML.parse(fs.readFileSync(path.join(ROOT, `Pulumi.${README_STACK}.yaml`), "utf8"));
        const dir = project({ local: YAML.stringify({ config: { ...dev.config, "kubeadm-cluster:charts": { flannel: { path: "charts/flannel.tgz" } } } }) });
        expect(() => loadStack(dir, "local")).toThrow(/charts\.flannel\.path/);
        fs.mkdirSync(path.join(dir, "charts"));
        fs.writeFileSync(path.join(dir, "charts", "flannel.tgz"), "");
        const cwd = process.cwd();
        const { spec, notes } = loadStack(dir, "local");
        expect(process.cwd()).toBe(cwd);
        expect(renderPlan("local", spec, notes)).toContain("chart the local chart `charts/flannel.tgz` (charts.flannel.path)");
    });

    // Graphviz is optional (.ci/run does not install it): checked where `dot` is installed.
    const hasDot = spawnSync("dot", ["-V"]).status === 0;
    if (!hasDot) console.warn("[planReport] dot (Graphviz) not installed: the --svg check is skipped");
    (hasDot ? test : test.skip)("--svg draws the step graph with Graphviz: every box in the SVG", () => {
        const dir = project({ [README_STACK]: fs.readFileSync(path.join(ROOT, `Pulumi.${README_STACK}.yaml`), "utf8") });
        const r = planCli(dir, "--svg");
        expect(r.status).toBe(0);
        const svg = r.files[`${README_STACK}.svg`];
        expect(svg).toMatch(/^<\?xml[\s\S]*<svg[\s\S]*<\/svg>\s*$/);
        const { spec } = loadStack(dir, README_STACK);
        for (const s of planSteps(spec)) expect(svg).toContain(`<title>${s.name.replace(/-/g, "&#45;")}</title>`);
    });

    test("the add-ons section: each enabled add-on's chart, values and objects; no secret value", () => {
        const md = renderPlan("t", parseClusterConfig(rawConfig({ addons: { imageRegistry: "mirror.example:5000/k8s", dashboard: { access: "cluster-admin" } } }), "kubeadm-cluster"));
        const section = md.slice(md.indexOf("## Add-ons"));
        expect(section).toContain("### traefik");
        expect(section).toContain("### metrics-server");
        expect(section).toContain("--kubelet-certificate-authority=/var/run/secrets/kubernetes.io/serviceaccount/ca.crt");
        expect(section).toContain("### headlamp");
        expect(section).toContain("bound to the ClusterRole `cluster-admin`");
        expect(section).toContain("registry: mirror.example:5000/k8s");
        expect(md).toContain("repository: mirror.example:5000/k8s/flannel-io/flannel");
        expect(md).not.toMatch(/PRIVATE KEY/);
    });

    test("the add-on seam: a section in ADDON_SECTIONS is rendered after the CNI and its boxes join the graph", () => {
        const addon: PlanSection = {
            id: "addon-test",
            title: "Add-on: test",
            render: () => "values of the test add-on",
            graph: () => ({ nodes: [{ id: "addon-test", label: "test add-on", resources: [] }], edges: [{ from: "cni", to: "addon-test", kind: "order" }] }),
        };
        ADDON_SECTIONS.push(addon);
        try {
            const md = renderPlan("t", parseClusterConfig(rawConfig(), "kubeadm-cluster"));
            const titles = planSections().map((s) => s.title);
            expect(titles.indexOf("Add-on: test")).toBeGreaterThan(titles.indexOf("Pod network (CNI)"));
            expect(titles.indexOf("Add-on: test")).toBeLessThan(titles.indexOf("Appendix: the step scripts"));
            expect(md.indexOf("values of the test add-on")).toBeGreaterThan(md.indexOf("## Pod network (CNI)"));
            expect(md).toContain("n_cni --> n_addon_test");
        } finally {
            ADDON_SECTIONS.splice(ADDON_SECTIONS.indexOf(addon), 1);
        }
    });
});

describe("the README's step graph", () => {
    test("is the one the code draws for Pulumi.dev.yaml (regenerate: npm run plan -- --readme)", () => {
        const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
        const block = readmeGraphBlock(ROOT);
        expect(block).toContain("```mermaid\nflowchart TD\n");
        expect(withReadmeGraph(readme, block)).toBe(readme);
    });

    test("the check notices a stale picture", () => {
        const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
        const stale = readme.replace("n_worker_2_join --> n_worker_2_node\n", "");
        expect(stale).not.toBe(readme);
        expect(withReadmeGraph(stale, readmeGraphBlock(ROOT))).not.toBe(stale);
    });
});
