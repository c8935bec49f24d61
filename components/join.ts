/**
 * What joining one node takes, shared by workers and additional control
 * planes: a fresh bootstrap token made on the first control plane right before
 * the join, the join itself, and the post-join registration. The delete
 * commands undo it in the right order on teardown: drain (first control
 * plane) -> kubeadm reset (the node) -> delete the Node object and token
 * (first control plane).
 */
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import * as random from "@pulumi/random";
import { renderJoinConfig } from "./kubeadm/config";
import { ClusterSpec, HostSpec } from "./model";
import { encodeBundle } from "./scripts";
import { step, StepConnection } from "./step";

/**
 * Lifetime of a join token. It is created right before each join and
 * deleted as soon as the node has registered, so this only bounds how long a
 * token survives a join that failed half-way (kubeadm's default is 24h).
 */
export const JOIN_TOKEN_TTL_SECONDS = 24 * 3600;
/** How long a teardown waits for pods to leave a node before resetting it anyway. */
export const DRAIN_TIMEOUT_SECONDS = 120;
/** The role label a worker gets (kubelets may not set node-role labels themselves: NodeRestriction). */
export const WORKER_ROLE_LABEL = "node-role.kubernetes.io/worker=";

/** Where the first control plane is and how to reach it. */
export interface InitNode {
    connection: StepConnection;
    user: string;
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
    /** `sha256:` discovery hash of the cluster CA. */
    caCertHash: pulumi.Output<string>;
    /** Join as a control plane, with the shared PKI files (secret). */
    controlPlanePki?: pulumi.Output<Record<string, string>>;
    /** Node labels applied after registration (`key=value`). */
    labels: string[];
    /** Extra steps this join must wait for (serial control-plane joins). */
    after?: pulumi.Resource[];
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

/** Create the token, join and registration steps of one node, as children of `parent`. */
export function joinNode(name: string, a: JoinArgs, parent: pulumi.Resource): JoinSteps {
    const child = { parent };
    const { id, token } = bootstrapToken(`${name}-bootstrap-token`, child);
    const initNode = a.initNode;

    const tokenStep = step(`${name}-token`, {
        connection: initNode.connection,
        user: initNode.user,
        script: "token",
        vars: { TOKEN_ID: id, TOKEN_TTL_SECONDS: JOIN_TOKEN_TTL_SECONDS, NODE_NAME: a.host.name },
        stdin: token.apply((t) => encodeBundle({ token: t })),
        onDelete: { script: "forget-node", vars: { NODE_NAME: a.host.name, TOKEN_ID: id } },
    }, { ...child, dependsOn: [...new Set([initNode.init, ...(a.after ?? [])])] });

    const bundle = pulumi.all([token, a.controlPlanePki ?? pulumi.output({} as Record<string, string>)])
        .apply(([t, pki]) => encodeBundle({ token: t, ...pki }));
    const joinStep = step(`${name}-join`, {
        connection: a.connection,
        user: a.host.user,
        script: "join",
        vars: {
            NODE_NAME: a.host.name,
            IS_CONTROL_PLANE: a.controlPlanePki !== undefined,
            TOKEN_TTL_SECONDS: JOIN_TOKEN_TTL_SECONDS,
            JOIN_CONFIG: a.caCertHash.apply((hash) => renderJoinConfig(a.spec, a.host, hash, a.controlPlanePki !== undefined)),
        },
        stdin: bundle,
        onDelete: { script: "reset", vars: { NODE_NAME: a.host.name } },
    }, { ...child, dependsOn: [tokenStep, a.prepare] });

    const nodeStep = step(`${name}-node`, {
        connection: initNode.connection,
        user: initNode.user,
        script: "node-ready",
        vars: { NODE_NAME: a.host.name, NODE_LABELS: a.labels, TOKEN_ID: id },
        onDelete: { script: "drain", vars: { NODE_NAME: a.host.name, DRAIN_TIMEOUT_SECONDS } },
    }, { ...child, dependsOn: [joinStep] });

    return { token: tokenStep, join: joinStep, node: nodeStep };
}
