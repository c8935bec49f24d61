/**
 * The step graph of a cluster as data, and its pictures (Mermaid for
 * Markdown, DOT for Graphviz): what the README's "How it works" picture and
 * the offline plan (`npm run plan`) draw. Built from `planSteps` (the remote
 * steps with their order) plus the resources around them (settings check,
 * PKI, Kubernetes provider, CNI). A test compares every ordering edge here
 * with the dependencies the real components register, so the picture cannot
 * drift from the program.
 */
import { initHost } from "./kubeadm/config";
import { ClusterSpec } from "./model";
import { PlannedStep, planSteps } from "./plan";
import { ADDON_CHARTS, CNI_CHARTS } from "./versions";

/** A box in the picture. */
export interface GraphNode {
    /** Unique id: the step's resource name for remote steps. */
    id: string;
    /** Short text; `\n` separates lines. */
    label: string;
    /** The host a step is about (drawn as a box around its steps); none for cluster-wide nodes. */
    group?: string;
    /** State in Pulumi's stack (drawn as a cylinder) rather than a step that runs. */
    state?: boolean;
    /** The Pulumi resources this box stands for (their `dependsOn` must match the ordering edges into it). */
    resources: string[];
}

/**
 * `order`: runs after (a resource dependency); `identity`: prepare waits for
 * the preflight facts of a host listed before it (duplicate product_uuid/MAC
 * check), also a resource dependency; `data`: a value flows along it (secret
 * stdin, provider credentials) without being an explicit dependency.
 */
export type EdgeKind = "order" | "identity" | "data";

export interface GraphEdge {
    from: string;
    to: string;
    kind: EdgeKind;
    label?: string;
}

export interface PlanGraph {
    nodes: GraphNode[];
    edges: GraphEdge[];
    /** Host groups in config order: id (host name) and title. */
    groups: { id: string; label: string }[];
}

/** The steps that make one node; the others (add-on steps) are cluster-wide and drawn outside the host boxes. */
const NODE_STEPS = ["scripts", "preflight", "prepare", "init", "node", "token", "join"];

function stepKind(s: PlannedStep): string {
    return s.name.slice(s.host.length + 1);
}

/** What each step of a host does, in a few words, for its box. */
function stepLabel(s: PlannedStep): string {
    const kind = stepKind(s);
    const on = s.target.node !== s.host || !NODE_STEPS.includes(kind) ? ` (on ${s.target.node})` : "";
    const what: Record<string, string> = {
        scripts: "install the step scripts",
        preflight: "read-only checks",
        prepare: "containerd, kubelet, kubeadm, images",
        init: "kubeadm init",
        token: "bootstrap token",
        join: s.call?.vars["IS_CONTROL_PLANE"] === true ? "kubeadm join --control-plane" : "kubeadm join",
        node: "wait registered, labels, taints",
        "gateway-api": "Gateway API CRDs",
        "smoke-test": "pods on every node, DNS, Service, routes",
    };
    return `${kind}${on}\n${what[kind] ?? s.script}`;
}

/** Names of the cluster-wide resources, as `Cluster` names them under `project`. */
export function clusterResourceNames(spec: ClusterSpec) {
    const p = spec.clusterName;
    return {
        settings: [`${p}-settings`, ...spec.hosts.map((h) => `${h.name}-settings`)],
        provider: `${p}-k8s`,
    };
}

/**
 * The boxes of the cluster-wide phases after the joins: the pod network and
 * the add-ons (Kubernetes-provider resources), each with the resources it
 * stands for, what it runs after, and the name `planSteps` gives it in a
 * step's `after` list.
 */
function clusterPhases(spec: ClusterSpec, steps: PlannedStep[]): { node: GraphNode; after: string[]; stepName?: string }[] {
    const p = spec.clusterName;
    const first = initHost(spec);
    const out: { node: GraphNode; after: string[]; stepName?: string }[] = [];
    const cni = spec.network.cni;
    // every add-on waits for the pod network, or for every node's join when there is none
    const joined = steps.filter((x) => x.script === "node-ready").map((x) => x.name);
    const network = cni !== "none" ? ["cni"] : joined;
    if (cni !== "none") {
        const pin = CNI_CHARTS[cni];
        out.push({
            node: {
                id: "cni",
                label: `CNI: ${cni}\nhelm.v3.Release ${pin.chart} ${pin.version}`,
                resources: [...(pin.namespace !== "kube-system" ? [`${p}-cni-namespace`] : []), `${p}-cni-release`],
            },
            // after every node's registration: a CNI failure cannot stop a join half-way
            after: joined,
            stepName: "pod network (CNI chart)",
        });
    }
    const a = spec.addons;
    const chart = (c: keyof typeof ADDON_CHARTS) => `helm.v3.Release ${ADDON_CHARTS[c].chart} ${ADDON_CHARTS[c].version}`;
    if (a.ingress.enabled) {
        out.push({
            node: { id: "ingress", label: `ingress: Traefik\n${chart("traefik")}`, resources: [`${p}-addons-traefik-namespace`, `${p}-addons-traefik`] },
            after: [...network, ...(a.ingress.gatewayApi ? [`${first.name}-gateway-api`] : [])],
            stepName: "traefik chart",
        });
    }
    if (a.metricsServer.enabled) {
        out.push({
            node: { id: "metrics-server", label: `metrics-server\n${chart("metrics-server")}`, resources: [`${p}-addons-metrics-server`] },
            after: network,
            stepName: "metrics-server chart",
        });
    }
    if (a.dashboard.enabled && a.ingress.enabled) {
        out.push({
            node: {
                id: "dashboard",
                label: `dashboard: Headlamp\n${chart("headlamp")},\nTLS secret, login account and token`,
                resources: ["headlamp-namespace", "dashboard-tls", "headlamp", "dashboard-login", "dashboard-login-binding", "dashboard-login-token"].map((r) => `${p}-addons-${r}`),
            },
            after: [...network, "ingress"],
            stepName: "headlamp chart",
        });
    }
    return out;
}

/** The graph of `spec`; `extra` lets sections add their own boxes and edges. */
export function planGraph(spec: ClusterSpec, steps: PlannedStep[] = planSteps(spec), extra: Partial<Pick<PlanGraph, "nodes" | "edges">>[] = []): PlanGraph {
    const names = clusterResourceNames(spec);
    const first = initHost(spec);
    const phases = clusterPhases(spec, steps);
    const nodes: GraphNode[] = [
        { id: "settings", label: "settings check\nrefuse changes a live cluster cannot take;\nat up: every host answers SSH", state: true, resources: names.settings },
        { id: "pki", label: "PKI in stack state\ncluster, front-proxy and etcd CAs,\nservice-account key, admin cert,\nkubelet serving certs", state: true, resources: [] },
    ];
    const edges: GraphEdge[] = [];
    // a step's `after` names a step, or one of the phases by the name planSteps gives it
    const byStepName = new Map(phases.filter((x) => x.stepName).map((x) => [x.stepName!, x.node.id]));
    const stepNames = new Set(steps.map((x) => x.name));
    const boxOf = (step: string, after: string): string => {
        if (stepNames.has(after)) return after;
        const id = byStepName.get(after);
        if (id === undefined) throw new Error(`planGraph: step ${step} runs after ${JSON.stringify(after)}, which is no step or phase the graph knows`);
        return id;
    };
    for (const s of steps) {
        nodes.push({ id: s.name, label: stepLabel(s), ...(NODE_STEPS.includes(stepKind(s)) ? { group: s.host } : {}), resources: [s.name] });
        if (s.name === `${s.host}-scripts`) edges.push({ from: "settings", to: s.name, kind: "order" });
        for (const a of s.after) edges.push({ from: boxOf(s.name, a), to: s.name, kind: "order" });
    }
    // prepare waits until no host listed before shares its identity
    spec.hosts.forEach((h, i) => {
        for (const earlier of spec.hosts.slice(0, i)) edges.push({ from: `${earlier.name}-preflight`, to: `${h.name}-prepare`, kind: "identity" });
    });
    for (const s of steps) {
        if (s.script === "init" || s.script === "join") edges.push({ from: "pki", to: s.name, kind: "data", label: s.script === "init" || s.call?.vars["IS_CONTROL_PLANE"] === true ? "CA keys" : "CA cert" });
    }
    nodes.push({ id: "provider", label: "Kubernetes provider\nadmin credentials from the PKI;\napplies every chart below", resources: [names.provider] });
    edges.push({ from: `${first.name}-init`, to: "provider", kind: "order" }, { from: "pki", to: "provider", kind: "data", label: "admin cert" });
    for (const ph of phases) {
        nodes.push(ph.node);
        for (const a of ph.after) edges.push({ from: a, to: ph.node.id, kind: "order" });
    }
    for (const e of extra) {
        nodes.push(...(e.nodes ?? []));
        edges.push(...(e.edges ?? []));
    }
    const groups = spec.hosts.map((h) => ({
        id: h.name,
        label: `${h.name}: ${h.roles.join(" + ")}${h.name === first.name ? ", runs kubeadm init" : ""}`,
    }));
    return { nodes, edges, groups };
}

/** A Mermaid id for a graph id (names are lowercase letters, digits and '-'). */
function mermaidId(id: string, prefix = "n_"): string {
    return prefix + id.replace(/[^A-Za-z0-9]/g, (c) => (c === "-" ? "_" : `x${c.charCodeAt(0).toString(16)}`));
}

function mermaidLabel(label: string): string {
    return `"${label.replace(/"/g, "#quot;").replace(/\n/g, "<br/>")}"`;
}

/** The graph as a Mermaid flowchart (GitHub renders ```mermaid blocks). Deterministic. */
export function renderMermaid(g: PlanGraph): string {
    const lines = ["flowchart TD"];
    const node = (n: GraphNode, indent: string) =>
        lines.push(`${indent}${mermaidId(n.id)}${n.state ? `[(${mermaidLabel(n.label)})]` : `[${mermaidLabel(n.label)}]`}`);
    for (const n of g.nodes.filter((x) => x.group === undefined && x.state)) node(n, "    ");
    for (const grp of g.groups) {
        lines.push(`    subgraph ${mermaidId(grp.id, "h_")}[${mermaidLabel(grp.label)}]`);
        for (const n of g.nodes.filter((x) => x.group === grp.id)) node(n, "        ");
        lines.push("    end");
    }
    for (const n of g.nodes.filter((x) => x.group === undefined && !x.state)) node(n, "    ");
    for (const e of g.edges) {
        const from = mermaidId(e.from);
        const to = mermaidId(e.to);
        const label = e.label ? `|${mermaidLabel(e.label)}|` : "";
        const arrow = e.kind === "order" ? "-->" : e.kind === "identity" ? "-.->" : "==>";
        lines.push(`    ${from} ${arrow}${label} ${to}`);
    }
    return lines.join("\n") + "\n";
}

function dotString(s: string): string {
    return `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`;
}

/** The graph in Graphviz DOT (`dot -Tsvg` draws it). Deterministic. */
export function renderDot(g: PlanGraph): string {
    const lines = [
        "digraph steps {",
        "    rankdir=TB;",
        '    node [shape=box, style="rounded", fontname="sans-serif", fontsize=10];',
        '    edge [fontname="sans-serif", fontsize=9];',
    ];
    const node = (n: GraphNode, indent: string) => lines.push(`${indent}${dotString(n.id)} [label=${dotString(n.label)}${n.state ? ", shape=cylinder" : ""}];`);
    for (const n of g.nodes.filter((x) => x.group === undefined)) node(n, "    ");
    g.groups.forEach((grp, i) => {
        lines.push(`    subgraph cluster_${i} {`, `        label=${dotString(grp.label)};`);
        for (const n of g.nodes.filter((x) => x.group === grp.id)) node(n, "        ");
        lines.push("    }");
    });
    for (const e of g.edges) {
        const style = e.kind === "order" ? "" : e.kind === "identity" ? "style=dotted" : "style=dashed";
        const attrs = [style, e.label ? `label=${dotString(e.label)}` : ""].filter(Boolean).join(", ");
        lines.push(`    ${dotString(e.from)} -> ${dotString(e.to)}${attrs ? ` [${attrs}]` : ""};`);
    }
    lines.push("}");
    return lines.join("\n") + "\n";
}
