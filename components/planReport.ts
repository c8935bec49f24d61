/**
 * The offline plan as Markdown: everything the program would do for a stack,
 * for a reviewer to read before approving a change (`npm run plan`,
 * components/cli/plan.ts). Pure and deterministic: the same config gives the same
 * text. Built only from the functions the components use (planSteps, the
 * kubeadm and containerd renderers, the CNI values), so what it shows is
 * what runs.
 *
 * Secrets never appear: the program's commands contain none by design (they
 * reach hosts on stdin), and where a secret goes the plan says so with a
 * placeholder such as `<secret: the bootstrap token>`.
 *
 * The document is a list of sections (`PlanSection`); add-ons add theirs to
 * `ADDON_SECTIONS`, and may add boxes to the step graph through `graph`.
 */
import * as YAML from "yaml";
import { chartReference, cniReleaseValues, mergeValues } from "./addons/cni";
import { DASHBOARD_LOGIN_ACCOUNT, DASHBOARD_NAMESPACE, DASHBOARD_TLS_SECRET, dashboardUrl, headlampValues, ingressEndpoints, metricsServerValues, traefikValues } from "./addons/values";
import { ADDON_CHARTS, AddonChart } from "./versions";
import { configWarnings } from "./config";
import { renderContainerdConfig, renderCrictlConfig, renderRegistryHosts } from "./containerd";
import { pauseImage } from "./host";
import { controlPlaneEndpoint, discoverySection, initHost, renderInitConfig, renderJoinConfig } from "./kubeadm/config";
import { ClusterSpec, isControlPlane } from "./model";
import { PlannedStep, planSteps } from "./plan";
import { PlanGraph, planGraph, renderMermaid } from "./planGraph";
import { where } from "./step";
import { LIBRARY_FILES, library } from "./scripts";
import { CNI_CHARTS } from "./versions";

/** Placeholders for the secrets the plan shows only by name. */
export const PLACEHOLDER = {
    bootstrapToken: "<secret: bootstrap token>",
    caCertHash: "<CA hash: sha256 of the cluster CA made at pulumi up>",
} as const;

/** What every section renders from. */
export interface PlanContext {
    /** Stack name (`Pulumi.<stack>.yaml`). */
    stack: string;
    spec: ClusterSpec;
    steps: PlannedStep[];
    graph: PlanGraph;
    /** How the config was read (no values), e.g. that the SSH key was not decrypted. */
    notes: string[];
}

/** One section of the plan: a `## title` and its Markdown. */
export interface PlanSection {
    /** Anchor-safe id, unique. */
    id: string;
    title: string;
    /** Markdown body (without the heading); "" leaves the section out. */
    render(ctx: PlanContext): string;
    /** Boxes and edges this section adds to the step graph (e.g. an add-on after the CNI). */
    graph?(spec: ClusterSpec): Partial<Pick<PlanGraph, "nodes" | "edges">>;
}

/** A fenced code block that no backtick run inside `text` can close. */
export function fence(text: string, lang = ""): string {
    const longest = Math.max(2, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
    const f = "`".repeat(longest + 1);
    return `${f}${lang}\n${text.endsWith("\n") ? text : `${text}\n`}${f}`;
}

function code(s: string): string {
    const longest = Math.max(0, ...[...s.matchAll(/`+/g)].map((m) => m[0].length));
    const f = "`".repeat(longest + 1);
    return longest > 0 ? `${f} ${s} ${f}` : `${f}${s}${f}`;
}

function placeholder(stdin: string): string {
    return stdin.startsWith("secret: ") ? `<${stdin}>` : stdin;
}

const summary: PlanSection = {
    id: "summary",
    title: "Summary",
    render({ stack, spec, notes }) {
        const cp = spec.hosts.filter(isControlPlane).length;
        const rows = spec.hosts.map((h) =>
            `| ${h.name} | ${h.roles.join(", ")} | ${code(where({ node: h.name, user: h.user, address: h.address, port: h.port }))} | ${h.internalAddress ? code(h.internalAddress) : "(address)"} |`);
        return [
            `Stack \`${stack}\` of project \`${spec.clusterName}\`: Kubernetes ${spec.kubernetesVersion}, ${cp} control plane${cp === 1 ? "" : "s"}, ` +
                `${spec.hosts.length - cp} worker-only host${spec.hosts.length - cp === 1 ? "" : "s"}, API ${code(controlPlaneEndpoint(spec))}, ` +
                `pod network ${spec.network.cni} (pods ${code(spec.network.podSubnet)}, services ${code(spec.network.serviceSubnet)}).`,
            "",
            "| host | roles | SSH | node IP |",
            "| --- | --- | --- | --- |",
            ...rows,
            "",
            "Secrets are never shown: each appears as a placeholder (`<secret: ...>`) where it is used. " +
                "They reach the hosts on the steps' stdin, never in a command text.",
            ...[...notes, ...configWarnings(spec).map((w) => `Warning: ${w}`)].map((n) => `\n- ${n}`),
        ].join("\n");
    },
};

const secrets: PlanSection = {
    id: "secrets",
    title: "Secrets and where they go",
    render({ steps }) {
        const into = (f: (s: PlannedStep) => boolean) => steps.filter(f).map((s) => s.name).join(", ") || "(none)";
        const secretStdin = (what: string) => (s: PlannedStep) => s.stdin?.startsWith("secret: ") === true && s.stdin.includes(what);
        return [
            "None of them is in this plan or in any command text; each is shown here only by name.",
            "",
            "| secret | where it is kept | what gets it |",
            "| --- | --- | --- |",
            "| SSH private key (`ssh.privateKey`) | the stack file, encrypted (not decrypted by the plan) | the SSH connection of every step |",
            `| cluster, front-proxy and etcd CA keys, service-account key | stack state, encrypted (made by the tls provider at \`pulumi up\`) | stdin of ${into(secretStdin("service-account key"))} |`,
            `| a kubelet serving key per node (its certificate signed by the cluster CA) | stack state, encrypted (made at \`pulumi up\`) | stdin of ${into(secretStdin("kubelet serving"))} |`,
            `| a bootstrap token per join (\`${PLACEHOLDER.bootstrapToken}\`) | stack state, encrypted (made at \`pulumi up\`, deleted from the cluster once the node registered) | stdin of ${into(secretStdin("bootstrap token"))} |`,
            "| admin client key and kubeconfig | stack state, encrypted | the Kubernetes provider; the `kubeconfig` stack output (secret) |",
        ].join("\n");
    },
};

const stepGraph: PlanSection = {
    id: "step-graph",
    title: "Step graph",
    render({ graph }) {
        return [
            "Solid arrows: runs after (a resource dependency: independent steps run in parallel). " +
                "Dotted: prepare waits for the preflight facts of the hosts listed before it (duplicate product_uuid/MAC check). " +
                "Thick: data that flows without being an explicit dependency (secrets on stdin, provider credentials).",
            "",
            fence(renderMermaid(graph), "mermaid"),
        ].join("\n");
    },
};

const stepsByHost: PlanSection = {
    id: "steps",
    title: "Steps, host by host",
    render({ spec, steps, graph }) {
        // what each step waits for: its ordering edges in the graph (the identity waits included)
        const after = (s: PlannedStep) => graph.edges
            .filter((e) => e.to === s.name && e.kind !== "data")
            .map((e) => (e.from === "settings" ? "the settings check" : e.kind === "identity" ? `${e.from} (identity check)` : e.from))
            .join(", ");
        const out: string[] = [
            `Every remote step in the order the graph runs them (a step runs once everything in "after" is done). ` +
                `Each command is the exact text \`pulumi preview --diff\` shows for it. Token and node steps are listed with the host they are about; they run on the first control plane.`,
            "",
            "| # | step | runs on | after | stdin |",
            "| --- | --- | --- | --- | --- |",
            ...steps.map((s, i) => `| ${i + 1} | [${s.name}](#${s.name}) | ${s.target.node} | ${after(s)} | ${s.stdin ? code(placeholder(s.stdin)) : ""} |`),
        ];
        for (const h of spec.hosts) {
            out.push("", `### Host ${h.name}`);
            for (const s of steps.filter((x) => x.host === h.name)) {
                out.push("", `#### ${s.name}`, "");
                out.push(`- runs on: ${s.target.node} (${code(where(s.target))}), script ${code(s.script)}`);
                if (s.call) out.push(`- does: ${s.call.what}`);
                if (s.call?.onDelete) out.push(`- deleting it: ${code(s.call.onDelete.script)}: ${s.call.onDelete.what}`);
                out.push(`- after: ${after(s)}`);
                if (s.stdin) out.push(`- stdin: ${code(placeholder(s.stdin))}`);
                if (s.tooLong !== undefined) {
                    out.push(`- **its command would be ${s.tooLong} bytes, too long for one argument: the config check refuses this config**`);
                    continue;
                }
                out.push("", "create:", "", fence(s.commands.create, "sh"));
                if (s.commands.update) out.push("", "<details><summary>update</summary>", "", fence(s.commands.update, "sh"), "", "</details>");
                if (s.commands.delete) out.push("", "<details><summary>delete</summary>", "", fence(s.commands.delete, "sh"), "", "</details>");
            }
        }
        return out.join("\n");
    },
};

const kubeadmConfigs: PlanSection = {
    id: "kubeadm",
    title: "kubeadm configuration",
    render({ spec }) {
        const first = initHost(spec);
        const out = [
            `\`kubeadm init --config\` on ${first.name} (in the init step's \`KUBEADM_CONFIG\`):`,
            "",
            fence(renderInitConfig(spec, first), "yaml"),
        ];
        const discovery = discoverySection(controlPlaneEndpoint(spec), PLACEHOLDER.bootstrapToken, PLACEHOLDER.caCertHash);
        for (const h of spec.hosts.filter((x) => x.name !== first.name)) {
            out.push(
                "",
                `\`kubeadm join --config\` on ${h.name} (the join step's \`JOIN_CONFIG\`; the join script appends the \`discovery\` section below with the values from its stdin):`,
                "",
                fence(renderJoinConfig(spec, h, isControlPlane(h)) + discovery, "yaml"),
            );
        }
        return out.join("\n");
    },
};

const containerd: PlanSection = {
    id: "containerd",
    title: "containerd configuration",
    render({ spec }) {
        const out = [
            "Written by the prepare step on every host (the same on each):",
            "",
            "`/etc/containerd/config.toml`:",
            "",
            fence(renderContainerdConfig({ pauseImage: pauseImage(spec), restrictOomScoreAdj: spec.containerd.restrictOomScoreAdj }), "toml"),
            "",
            "`/etc/crictl.yaml`:",
            "",
            fence(renderCrictlConfig(), "yaml"),
        ];
        for (const r of spec.containerd.registries.map(renderRegistryHosts)) {
            out.push("", `\`/etc/containerd/certs.d/${r.dir}/hosts.toml\`:`, "", fence(r.hostsToml, "toml"));
            if (r.ca) out.push("", `\`/etc/containerd/certs.d/${r.dir}/ca.crt\` (a CA certificate, public):`, "", fence(r.ca));
        }
        return out.join("\n");
    },
};

const cni: PlanSection = {
    id: "cni",
    title: "Pod network (CNI)",
    render({ spec }) {
        const choice = spec.network.cni;
        if (choice === "none") return "`network.cni: none`: the program installs no pod network; install one yourself once the nodes have joined.";
        const pin = CNI_CHARTS[choice];
        const source = spec.charts[pin.chart];
        const ref = chartReference(pin, source);
        const from = source?.path
            ? `the local chart ${code(source.path)} (charts.${pin.chart}.path)`
            : `${code(`${ref.chart}`)} ${ref.version} from ${code(String((ref.repositoryOpts as { repo?: string } | undefined)?.repo))}`;
        return [
            `A \`helm.v3.Release\` named \`${choice}\` in namespace \`${pin.namespace}\`, chart ${from}, once every node has joined. Values:`,
            "",
            fence(YAML.stringify(cniReleaseValues(choice, spec.network, spec.addons.imageRegistry, source?.values), { lineWidth: 0, sortMapEntries: false }), "yaml"),
        ].join("\n");
    },
};

/**
 * Sections add-ons contribute (ingress, dashboard, metrics-server, smoke
 * test): each renders its values (e.g. `fence(YAML.stringify(values), "yaml")`);
 * their remote steps (gateway-api, smoke-test) are already listed host by
 * host, and the step graph already has their boxes (planGraph.ts
 * `clusterPhases`). A new add-on adds its box there or through `graph`, each
 * box naming the Pulumi resources it stands for and drawn after what they
 * depend on (e.g. `{from: "cni", to: "ingress", kind: "order"}`):
 * tests/planReport.test.ts fails for a registered resource with dependencies
 * and no box, or a box whose edges differ from its resources' dependencies.
 * They come after the pod network, before the step-script appendix.
 */
export const ADDON_SECTIONS: PlanSection[] = [{
    id: "addons",
    title: "Add-ons",
    render({ spec }) {
        const a = spec.addons;
        const release = (chart: AddonChart, values: Record<string, unknown>, what: string): string[] => {
            const pin = ADDON_CHARTS[chart];
            const source = spec.charts[pin.chart];
            const ref = chartReference(pin, source);
            const from = source?.path
                ? `the local chart ${code(source.path)} (charts.${pin.chart}.path)`
                : `${code(String(ref.chart))} ${ref.version} from ${code(String((ref.repositoryOpts as { repo?: string } | undefined)?.repo))}`;
            return ["", `### ${chart}`, "", `${what}: a \`helm.v3.Release\` named \`${chart}\` in namespace \`${pin.namespace}\`, chart ${from}, after the pod network. Values:`, "",
                fence(YAML.stringify(mergeValues(values, source?.values), { lineWidth: 0, sortMapEntries: false }), "yaml")];
        };
        const out: string[] = [];
        const on = [a.ingress.enabled && "ingress", a.dashboard.enabled && "dashboard", a.metricsServer.enabled && "metrics-server", a.smokeTest.enabled && "smoke test"].filter(Boolean);
        out.push(on.length ? `On: ${on.join(", ")}${a.imageRegistry ? `; every add-on image from ${code(a.imageRegistry)} (addons.imageRegistry)` : ""}.` : "Every add-on is off.");
        if (a.ingress.enabled) {
            out.push(...release("traefik", traefikValues(spec), `The ingress controller (${a.ingress.exposure} on ${a.ingress.nodes.join(", ")})`));
            out.push("", "Reached at:", "", ...ingressEndpoints(spec).map((e) => `- ${e.node}: ${e.http} and ${e.https}`));
        }
        if (a.metricsServer.enabled) out.push(...release("metrics-server", metricsServerValues(spec), "metrics-server, verifying each kubelet's serving certificate against the cluster CA"));
        if (a.dashboard.enabled) {
            out.push(...release("headlamp", headlampValues(spec), `The dashboard at ${dashboardUrl(a)}`));
            out.push("", `With it: the TLS Secret \`${DASHBOARD_NAMESPACE}/${DASHBOARD_TLS_SECRET}\` (${a.dashboard.tlsCertificate ? "the certificate from addons.dashboard.tls, its key `<secret: addons.dashboard.tls.key>`" : "a certificate for the host from the program's ingress CA, key `<secret: generated at pulumi up>`"}), ` +
                `the ServiceAccount \`${DASHBOARD_NAMESPACE}/${DASHBOARD_LOGIN_ACCOUNT}\` bound to the ClusterRole \`${a.dashboard.access}\`, and its token Secret (stack output \`dashboardToken\`, <secret: made by the cluster>).`);
        }
        return out.join("\n");
    },
}];

const scriptLibrary: PlanSection = {
    id: "step-scripts",
    title: "Appendix: the step scripts",
    render() {
        const lib = library();
        const out = [
            `The scripts step of every host installs these ${LIBRARY_FILES.length} files to ${code(lib.dir)} (SHA-256 ${lib.sha256}); ` +
                "every other step's command sets its variables and sources `lib.sh` and its own file from there.",
        ];
        for (const f of LIBRARY_FILES) out.push("", `### ${f}`, "", fence(lib.files[f], "bash"));
        return out.join("\n");
    },
};

/** The sections of the plan, in order. */
export function planSections(): PlanSection[] {
    return [summary, secrets, stepGraph, stepsByHost, kubeadmConfigs, containerd, cni, ...ADDON_SECTIONS, scriptLibrary];
}

/** The context every section renders from (steps and the graph, with the sections' own boxes). */
export function planContext(stack: string, spec: ClusterSpec, notes: string[] = [], sections: PlanSection[] = planSections()): PlanContext {
    const steps = planSteps(spec);
    const graph = planGraph(spec, steps, sections.map((s) => s.graph?.(spec) ?? {}));
    return { stack, spec, steps, graph, notes };
}

/** The whole plan as one Markdown document. */
export function renderPlan(stack: string, spec: ClusterSpec, notes: string[] = [], sections: PlanSection[] = planSections()): string {
    const ctx = planContext(stack, spec, notes, sections);
    const out = [
        `# Plan of stack ${stack}`,
        "",
        "Generated by `npm run plan` from the stack file alone (no Pulumi CLI, no host). What `pulumi up` would run, host by host.",
        "",
        ...sections.map((s) => `- [${s.title}](#${s.id})`),
    ];
    for (const s of sections) {
        const body = s.render(ctx);
        if (body === "") continue;
        out.push("", `<a id="${s.id}"></a>`, "", `## ${s.title}`, "", body);
    }
    return out.join("\n") + "\n";
}
