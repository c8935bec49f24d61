import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { InitNode, JoinSteps, joinNode } from "./join";
import { ClusterSpec, HostSpec } from "./model";
import { StepConnection } from "./step";

/** Inputs of one worker node. */
export interface WorkerArgs {
    spec: ClusterSpec;
    host: HostSpec;
    connection: StepConnection;
    /** The host's prepare step. */
    prepare: command.remote.Command;
    initNode: InitNode;
    /** The cluster CA certificate (PEM) and its `sha256:` discovery hash. */
    caCertPem: pulumi.Output<string>;
    caCertHash: pulumi.Output<string>;
    /** The node's kubelet serving certificate and key as bundle files (secret). */
    kubeletServing: pulumi.Output<Record<string, string>>;
}

/**
 * A worker node: joins as soon as the first control plane is initialised and
 * its own host is prepared, independently of other workers and of the CNI.
 * Removing it from the stack drains it, resets the host and deletes the Node.
 */
export class Worker extends pulumi.ComponentResource {
    public readonly steps: JoinSteps;

    constructor(name: string, args: WorkerArgs, opts?: pulumi.ComponentResourceOptions) {
        super("kubeadm:index:Worker", name, {}, opts);
        this.steps = joinNode(name, {
            spec: args.spec,
            host: args.host,
            connection: args.connection,
            prepare: args.prepare,
            initNode: args.initNode,
            caCertPem: args.caCertPem,
            caCertHash: args.caCertHash,
            kubeletServing: args.kubeletServing,
        }, this);
        this.registerOutputs({});
    }
}
