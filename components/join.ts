/**
 * What joining one node takes, shared by workers and additional control
 * planes: a fresh bootstrap token made on the first control plane right
 * before the join (once the node's host is prepared), the join itself, and
 * the post-join registration that deletes the token again. The delete
 * commands undo it in the right order on teardown: drain (first control
 * plane) -> kubeadm reset (the node) -> delete the Node object and its tokens
 * (first control plane). Each of them is claim-guarded (see step.ts), so a
 * replacement of any of these steps never touches a node still in the stack.
 */
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import * as random from "@pulumi/random";
import { targetOf } from "./host";
import { renderJoinConfig, controlPlaneEndpoint } from "./kubeadm/config";
import { ClusterSpec, HostSpec, isWorker } from "./model";
import { encodeBundle } from "./scripts";
import { ScriptCall, step, StepConnection, StepTarget } from "./step";

/**
 * Lifetime of a join token. It is created right before its node joins and
 * deleted as soon as the node registered, so this only bounds how long a
 * token outlives a join that failed or never started (another step failed
 * first). kubeadm join gives up after 15 minutes (the join script's timeout).
 */
export const JOIN_TOKEN_TTL_SECONDS = 3600;
/** How long a teardown waits for pods to leave a node before resetting it anyway. */
export const DRAIN_TIMEOUT_SECONDS = 120;
/** The role label a worker gets (kubelets may not set node-role labels themselves: NodeRestriction). */
export const WORKER_ROLE_LABEL = "node-role.kubernetes.io/worker=";

/** Where the first control plane is and how to reach it. */
export interface InitNode {
    connection: StepConnection;
    target: StepTarget;
    /** The `kubeadm init` step; every join waits for it. */
    init: command.remote.Command;
}

export interface JoinArgs {
    spec: ClusterSpec;
    host: HostSpec;
    connection: StepConnection;
    /** The host's prepare step. */
    prepare: command.remote.Command;
    initNode: InitNode;
    /** The cluster CA certificate (PEM) and its `sha256:` discovery hash. */
    caCertPem: pulumi.Output<string>;
    caCertHash: pulumi.Output<string>;
    /** Join as a control plane, with the shared PKI files (secret). */
    controlPlanePki?: pulumi.Output<Record<string, string>>;
    /** Extra steps this join must wait for (serial control-plane joins). */
    after?: pulumi.Resource[];
    /** The node's kubelet serving certificate and key as bundle files (secret; Pki.kubeletServingCert). */
    kubeletServing: pulumi.Output<Record<string, string>>;
}

export interface JoinSteps {
    token: command.remote.Command;
    join: command.remote.Command;
    node: command.remote.Command;
}

/** A bootstrap token `[a-z0-9]{6}.[a-z0-9]{16}`: the id is public, the whole token is a secret. */
export function bootstrapToken(name: string, opts: pulumi.CustomResourceOptions) {
    const chars = { upper: false, lower: true, numeric: true, special: false };
    const id = new random.RandomString(`${name}-id`, { length: 6, ...chars }, opts);
    const secret = new random.RandomPassword(`${name}-secret`, { length: 16, ...chars }, opts);
    return { id: id.result, token: pulumi.secret(pulumi.interpolate`${id.result}.${secret.result}`) };
}

/** The token step's script for the join of `host` (runs on the first control plane; deleting it forgets the node). */
export function tokenCall(spec: ClusterSpec, host: HostSpec): ScriptCall & { onDelete: ScriptCall } {
    const node = host.name;
    return {
        script: "token",
        what: `bootstrap token for the join of ${node} (valid ${JOIN_TOKEN_TTL_SECONDS / 60} min, deleted once ${node} registered)`,
        vars: { NODE_NAME: node, TOKEN_TTL_SECONDS: JOIN_TOKEN_TTL_SECONDS },
        onDelete: { script: "forget-node", vars: { NODE_NAME: node }, what: `delete node ${node} and its bootstrap tokens from the cluster` },
    };
}

/** The join step's script for `host` (deleting it resets the node). */
export function joinCall(spec: ClusterSpec, host: HostSpec, asControlPlane: boolean, tokenStep: string): ScriptCall & { onDelete: ScriptCall } {
    const node = host.name;
    return {
        script: "join",
        what: `kubeadm join of ${node} as a ${asControlPlane ? "control plane" : "worker"}, Kubernetes ${spec.kubernetesVersion}, API ${controlPlaneEndpoint(spec)}`,
        vars: {
            NODE_NAME: node,
            IS_CONTROL_PLANE: asControlPlane,
            JOIN_CONFIG: renderJoinConfig(spec, host, asControlPlane),
            API_ENDPOINT: controlPlaneEndpoint(spec),
            TOKEN_STEP: tokenStep,
        },
        onDelete: { script: "reset", vars: { NODE_NAME: node }, what: `kubeadm reset of ${node}, then removal of its Kubernetes state, CNI interfaces and rules` },
    };
}

/** The labels the node step keeps on `host`: the worker role label for hosts with the worker role, then the host's own. */
export function nodeLabels(host: HostSpec): string[] {
    return [...(isWorker(host) ? [WORKER_ROLE_LABEL] : []), ...Object.entries(host.labels).map(([k, v]) => `${k}=${v}`)];
}

/** The taints the node step keeps on `host` (`key[=value]:Effect`). */
export function nodeTaints(host: HostSpec): string[] {
    return host.taints.map((t) => `${t.key}${t.value !== undefined ? `=${t.value}` : ""}:${t.effect}`);
}

/** The node step's script for `host` (runs on the first control plane; deleting it drains the node, unless `drain` is false). */
export function nodeCall(host: HostSpec, drain = true): ScriptCall & { onDelete?: ScriptCall } {
    const node = host.name;
    const labels = nodeLabels(host);
    const taints = nodeTaints(host);
    return {
        script: "node-ready",
        what: `wait for node ${node} to register, keep its labels (${labels.length}) and taints (${taints.length}) as configured, delete its bootstrap tokens`,
        vars: { NODE_NAME: node, NODE_LABELS: labels, NODE_TAINTS: taints },
        ...(drain
            ? { onDelete: { script: "drain", vars: { NODE_NAME: node, DRAIN_TIMEOUT_SECONDS }, what: `drain ${node} (at most ${DRAIN_TIMEOUT_SECONDS}s; an unreachable API is a warning)` } }
            : {}),
    };
}

/** Create the token, join and registration steps of one node, as children of `parent`. */
export function joinNode(name: string, a: JoinArgs, parent: pulumi.Resource): JoinSteps {
    const child = { parent };
    const { token } = bootstrapToken(`${name}-bootstrap-token`, child);
    const initNode = a.initNode;
    const asControlPlane = a.controlPlanePki !== undefined;

    // Made only once the node's host is prepared (so a host that fails
    // preflight or prepare never gets a token) and right before its join.
    const tokenStep = step(`${name}-token`, {
        connection: initNode.connection,
        target: initNode.target,
        ...tokenCall(a.spec, a.host),
        stdin: token.apply((t) => encodeBundle({ token: t })),
        secretStdin: true,
    }, { ...child, dependsOn: [...new Set([initNode.init, a.prepare, ...(a.after ?? [])])] });

    const bundle = pulumi.all([token, a.caCertHash, a.caCertPem, a.controlPlanePki ?? pulumi.output({} as Record<string, string>), a.kubeletServing])
        .apply(([t, hash, ca, pki, serving]) => encodeBundle({ ...pki, ...serving, token: t, "ca-cert-hash": hash, "pki/ca.crt": ca }));
    const joinStep = step(`${name}-join`, {
        connection: a.connection,
        target: targetOf(a.host),
        ...joinCall(a.spec, a.host, asControlPlane, `${name}-token`),
        stdin: bundle,
        secretStdin: true,
    }, { ...child, dependsOn: [a.prepare, tokenStep] });

    // stdin is the token step's output line: this step runs again whenever
    // that one ran, so a token never outlives a successful join.
    const nodeStep = step(`${name}-node`, {
        connection: initNode.connection,
        target: initNode.target,
        ...nodeCall(a.host),
        stdin: tokenStep.stdout,
        secretStdin: true,
    }, { ...child, dependsOn: [joinStep] });

    return { token: tokenStep, join: joinStep, node: nodeStep };
}
