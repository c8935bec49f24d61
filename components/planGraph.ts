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
import { CNI_CHARTS } from "./versions";

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

/** What each step of a host does, in a few words, for its box. */
function stepLabel(s: PlannedStep): string {
    const kind = s.name.slice(s.host.length + 1);
    const on = s.target.node !== s.host ? ` (on ${s.target.node})` : "";
    const what: Record<string, string> = {
        scripts: "install the step scripts",
        preflight: "read-only checks",
        prepare: "containerd, kubelet, kubeadm, images",
        init: "kubeadm init",
        token: "bootstrap token",
        join: s.call?.vars["IS_CONTROL_PLANE"] === true ? "kubeadm join --control-plane" : "kubeadm join",
        node: "wait registered, labels, taints",
    };
    return `${kind}${on}\n${what[kind] ?? s.script}`;
}

/** Names of the cluster-wide resources, as `Cluster` names them under `project`. */
export function clusterResourceNames(spec: ClusterSpec) {
    const p = spec.clusterName;
    return {
        settings: [`${p}-settings`, ...spec.hosts.map((h) => `${h.name}-settings`)],
        provider: `${p}-k8s`,
        cni: `${p}-cni`,
    };
}

/** The graph of `spec`; `extra` lets later sections (add-ons) add their own boxes and edges. */
export function planGraph(spec: ClusterSpec, steps: PlannedStep[] = planSteps(spec), extra: Partial<Pick<PlanGraph, "nodes" | "edges">>[] = []): PlanGraph {
    const names = clusterResourceNames(spec);
    const first = initHost(spec);
    const nodes: GraphNode[] = [
        { id: "settings", label: "settings check\nrefuse changes a live cluster cannot take;\nat up: every host answers SSH", state: true, resources: names.settings },
        { id: "pki", label: "PKI in stack state\ncluster, front-proxy and etcd CAs,\nservice-account key, admin cert", state: true, resources: [] },
    ];
    const edges: GraphEdge[] = [];
    for (const s of steps) {
        nodes.push({ id: s.name, label: stepLabel(s), group: s.host, resources: [s.name] });
        if (s.name === `${s.host}-scripts`) edges.push({ from: "settings", to: s.name, kind: "order" });
        for (const a of s.after) edges.push({ from: a, to: s.name, kind: "order" });
    }
    // prepare waits until no host listed before shares its identity
    spec.hosts.forEach((h, i) => {
        for (const earlier of spec.hosts.slice(0, i)) edges.push({ from: `${earlier.name}-preflight`, to: `${h.name}-prepare`, kind: "identity" });
    });
    for (const s of steps) {
        if (s.script === "init" || s.script === "join") edges.push({ from: "pki", to: s.name, kind: "data", label: s.script === "init" || s.call?.vars["IS_CONTROL_PLANE"] === true ? "CA keys" : "CA cert" });
    }
    nodes.push({ id: "provider", label: "Kubernetes provider\nadmin credentials from the PKI", resources: [names.provider] });
    edges.push({ from: `${first.name}-init`, to: "provider", kind: "order" }, { from: "pki", to: "provider", kind: "data", label: "admin cert" });
    const cni = spec.network.cni;
    if (cni !== "none") {
        const pin = CNI_CHARTS[cni];
        nodes.push({
            id: "cni",
            label: `CNI: ${cni}\nhelm.v3.Release ${pin.chart} ${pin.version}`,
            resources: [...(pin.namespace !== "kube-system" ? [`${names.cni}-namespace`] : []), `${names.cni}-release`],
        });
        // after every node's registration: a CNI failure cannot stop a join half-way
        for (const s of steps.filter((x) => x.script === "node-ready")) edges.push({ from: s.name, to: "cni", kind: "order" });
        edges.push({ from: "provider", to: "cni", kind: "data" });
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
