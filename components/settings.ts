/**
 * Settings that a live cluster cannot take a change of, and the check that
 * refuses such a change at `pulumi preview` (and at `pulumi up`), before any
 * host is touched.
 *
 * kubeadm applies most of its configuration once: at `kubeadm init` (cluster
 * version, networks, API endpoint and certificates, control-plane flags,
 * kubelet and kube-proxy configuration) or at `kubeadm join` (a node's role
 * and IP). Re-running init or join with another configuration does nothing
 * ("already initialised"), so without this check such a change would be
 * silently ignored, or worse (a version bump would upgrade the packages under
 * a control plane that stays on the old version).
 *
 * How the program knows the values the cluster was made with: each is kept
 * in a `random.RandomString` whose `keepers` are the settings, with
 * `ignoreChanges: ["keepers"]`. The engine then never updates it, so its
 * `keepers` output stays what it was when the cluster (or node) was created,
 * also during a preview, without reaching any host or API server. Removing a
 * node removes its record; `pulumi destroy` removes all of them.
 * Re-baselining after a change made by hand: `pulumi up --replace <urn>` of
 * the record (the README's Troubleshooting).
 */
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { initHost } from "./kubeadm/config";
import { ClusterSpec, ExtraArg, HostSpec, nodeAddress } from "./model";

/** One setting a live cluster or node cannot change: where it is in the config, and the advice when it changes. */
interface Fixed {
    /** Key in the record (stable: a node's record does not depend on its index in \`hosts\`). */
    key?: string;
    /** Where it is in the stack config, for the message. */
    path: string;
    value: string;
    advice: (old: string, now: string) => string;
}

const REBUILD = "set it back, or rebuild the cluster with the new value (pulumi destroy, then pulumi up)";

function args(list: readonly ExtraArg[]): string {
    return list.map((a) => `${a.name}=${a.value}`).join(" ");
}

/** JSON with sorted keys, so equal objects give equal text. */
function canonical(v: unknown): string {
    if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
    if (v && typeof v === "object") {
        return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(",")}}`;
    }
    return JSON.stringify(v);
}

function clusterFixed(spec: ClusterSpec): Fixed[] {
    const kubeadmAdvice = (old: string) =>
        `kubeadm applied this when the cluster was created (and when each node joined); the program cannot change it on a live cluster yet. ` +
        `Set it back to ${old || "(empty)"}, or ${REBUILD.replace("set it back, or ", "")}`;
    return [
        {
            path: "kubernetesVersion",
            value: spec.kubernetesVersion,
            advice: (old) =>
                `the cluster runs Kubernetes ${old}; moving it to another version is a kubeadm upgrade of every node, which this program does not do yet ` +
                `(the prepare step would install the new kubelet under the old control plane). Set kubernetesVersion back to "${old}"`,
        },
        { path: "network.podSubnet", value: spec.network.podSubnet, advice: (old) => `pod addresses come from ${old} since the cluster was created: ${REBUILD}` },
        { path: "network.serviceSubnet", value: spec.network.serviceSubnet, advice: (old) => `Services have addresses from ${old} since the cluster was created: ${REBUILD}` },
        { path: "network.dnsDomain", value: spec.network.dnsDomain, advice: (old) => `kubelets and CoreDNS serve ${old} since the cluster was created: ${REBUILD}` },
        {
            path: "network.cni",
            value: spec.network.cni,
            advice: (old) =>
                `the pod network was set up with "${old}" when the cluster was created; switching a live cluster's network is a migration this program does not do: ${REBUILD}`,
        },
        {
            path: "apiServer.address",
            value: `${spec.apiServer.address}${spec.apiServer.explicitAddress ? "" : " (the first control plane's address)"}`,
            advice: (old) => `every node and kubeconfig reaches the API at ${old}, and the certificates name it: ${REBUILD}`,
        },
        { path: "apiServer.port", value: String(spec.apiServer.port), advice: (old) => `the API server listens on ${old} on every control plane, and every node uses it: ${REBUILD}` },
        {
            path: "apiServer.extraSans",
            value: [...spec.apiServer.extraSans].sort().join(", "),
            advice: (old) =>
                `the API server certificates were made with these names (${old || "none"}); this program does not re-issue them on a live cluster yet. ` +
                `Set apiServer.extraSans back, or re-issue them by hand (kubeadm init phase certs apiserver on each control plane) and re-baseline (README: Troubleshooting)`,
        },
        { path: "kubeadm.imageRepository", value: spec.kubeadm.imageRepository, advice: kubeadmAdvice },
        { path: "kubeadm.apiServerExtraArgs", value: args(spec.kubeadm.apiServerExtraArgs), advice: kubeadmAdvice },
        { path: "kubeadm.controllerManagerExtraArgs", value: args(spec.kubeadm.controllerManagerExtraArgs), advice: kubeadmAdvice },
        { path: "kubeadm.schedulerExtraArgs", value: args(spec.kubeadm.schedulerExtraArgs), advice: kubeadmAdvice },
        { path: "kubeadm.kubeletExtraArgs", value: args(spec.kubeadm.kubeletExtraArgs), advice: kubeadmAdvice },
        { path: "kubeadm.kubeProxyMode", value: spec.kubeadm.proxyMode, advice: kubeadmAdvice },
        { path: "kubeadm.kubelet", value: canonical(spec.kubeadm.kubeletConfiguration), advice: kubeadmAdvice },
        { path: "kubeadm.kubeProxy", value: canonical(spec.kubeadm.kubeProxyConfiguration), advice: kubeadmAdvice },
        {
            path: "hosts",
            value: `${initHost(spec).name} is the first control plane`,
            advice: (old) =>
                `${old.replace(/ is the first control plane$/, "")} ran kubeadm init and must stay the first host with the control-plane role in \`hosts\` ` +
                `(removing or re-ordering it would reset the cluster's first control plane): put it back in front of the other control planes`,
        },
    ];
}

function nodeFixed(spec: ClusterSpec, host: HostSpec): Fixed[] {
    const index = spec.hosts.indexOf(host);
    const at = `hosts[${index}]`;
    return [
        {
            key: "roles",
            path: `${at}.roles`,
            value: host.roles.join(", "),
            advice: (old) =>
                `${host.name} joined with the role(s) ${old}; a live node cannot change role. Set the roles back, or remove ${host.name} from hosts ` +
                `(pulumi up drains and resets it), then add it back with the new roles`,
        },
        {
            key: "nodeIP",
            path: `${at}.internalAddress`,
            value: nodeAddress(host),
            advice: (old) =>
                `${host.name} joined with the node IP ${old} (internalAddress, or address when internalAddress is not set); a live node keeps it. ` +
                `Set it back (to change only where SSH connects, set internalAddress: ${old} and the new address), or remove and re-add the host`,
        },
    ];
}

/** One refused change. */
export interface RefusedChange {
    path: string;
    was: string;
    now: string;
    advice: string;
}

/** Thrown with every refused change at once (a `RunError`: the CLI prints the message, not a stack trace). */
export class RefusedChangesError extends pulumi.RunError {
    readonly changes: RefusedChange[];

    constructor(changes: RefusedChange[]) {
        const n = changes.length;
        super(
            [
                `Refused: ${n} ${n === 1 ? "change" : "changes"} that a running cluster cannot take (nothing was touched):`,
                ...changes.map((c) => `  - ${c.path}: ${JSON.stringify(c.was)} -> ${JSON.stringify(c.now)}: ${c.advice}`),
            ].join("\n"),
        );
        this.name = "RefusedChangesError";
        this.changes = changes;
        Object.setPrototypeOf(this, new.target.prototype);
    }
}

function compare(fixed: Fixed[], recorded: Record<string, unknown> | undefined): RefusedChange[] {
    if (!recorded) return [];
    const out: RefusedChange[] = [];
    for (const f of fixed) {
        const was = recorded[f.key ?? f.path];
        // A setting this version of the program did not record yet is taken as it is now.
        if (typeof was !== "string" || was === f.value) continue;
        out.push({ path: f.path, was, now: f.value, advice: f.advice(was, f.value) });
    }
    return out;
}

function record(name: string, fixed: Fixed[], opts: pulumi.CustomResourceOptions): random.RandomString {
    return new random.RandomString(name, {
        length: 8,
        special: false,
        keepers: Object.fromEntries(fixed.map((f) => [f.key ?? f.path, f.value])),
    }, { ...opts, ignoreChanges: ["keepers"] });
}

/**
 * Record the fixed settings of the cluster and of every node, and return an
 * output that resolves when none of them changed, or rejects with a
 * `RefusedChangesError` listing every change.
 */
export function fixedSettingsCheck(name: string, spec: ClusterSpec, opts: pulumi.CustomResourceOptions): pulumi.Output<void> {
    const checks: pulumi.Output<RefusedChange[]>[] = [];
    const clusterFixedNow = clusterFixed(spec);
    const cluster = record(`${name}-settings`, clusterFixedNow, opts);
    checks.push(cluster.keepers.apply((k) => compare(clusterFixedNow, k)));
    for (const host of spec.hosts) {
        const fixed = nodeFixed(spec, host);
        const node = record(`${host.name}-settings`, fixed, opts);
        checks.push(node.keepers.apply((k) => compare(fixed, k)));
    }
    return pulumi.all(checks).apply((lists) => {
        const refused = lists.flat();
        if (refused.length > 0) throw new RefusedChangesError(refused);
    });
}
