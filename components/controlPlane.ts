import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { targetOf } from "./host";
import { controlPlaneEndpoint, renderInitConfig } from "./kubeadm/config";
import { InitNode, JoinSteps, joinNode, nodeCall } from "./join";
import { ClusterSpec, HostSpec } from "./model";
import { Pki } from "./pki";
import { encodeBundle } from "./scripts";
import { ScriptCall, step, StepConnection } from "./step";

/** The init step's script on the first control plane (deleting it resets that host). */
export function initCall(spec: ClusterSpec, host: HostSpec): ScriptCall & { onDelete: ScriptCall } {
    return {
        script: "init",
        what: `kubeadm init of cluster ${spec.clusterName} on ${host.name} (first control plane), Kubernetes ${spec.kubernetesVersion}, API ${controlPlaneEndpoint(spec)}`,
        vars: {
            NODE_NAME: host.name,
            KUBEADM_CONFIG: renderInitConfig(spec, host),
            API_ENDPOINT: controlPlaneEndpoint(spec),
        },
        onDelete: {
            script: "reset",
            vars: { NODE_NAME: host.name },
            what: `kubeadm reset of ${host.name}, the first control plane (the cluster ends), then removal of its Kubernetes state, CNI interfaces and rules`,
        },
    };
}

/** Inputs of one control-plane node. */
export interface ControlPlaneArgs {
    spec: ClusterSpec;
    host: HostSpec;
    connection: StepConnection;
    /** The host's prepare step. */
    prepare: command.remote.Command;
    pki: Pki;
    /** The first control plane; absent for the first control plane itself, which runs `kubeadm init`. */
    initNode?: InitNode;
    /** Steps this join waits for: control planes join one at a time (each adds an etcd member). */
    after?: pulumi.Resource[];
}

/**
 * A control-plane node. The first one runs `kubeadm init` with the shared PKI
 * from stack state written to /etc/kubernetes/pki beforehand; the others join
 * with `--control-plane` and get the same CA files copied (not
 * `--upload-certs`, whose secret expires after two hours).
 */
export class ControlPlane extends pulumi.ComponentResource {
    /** `kubeadm init` (first control plane only). */
    public readonly init?: command.remote.Command;
    /** Labels and taints of the first control plane, once init is done (first control plane only). */
    public readonly node?: command.remote.Command;
    /** Token, join and registration steps (additional control planes only). */
    public readonly joinSteps?: JoinSteps;
    /** The last step of this node: what the next control plane waits for. */
    public readonly ready: command.remote.Command;

    constructor(name: string, args: ControlPlaneArgs, opts?: pulumi.ComponentResourceOptions) {
        super("kubeadm:index:ControlPlane", name, {}, opts);
        const { spec, host } = args;
        const kubeletServing = args.pki.kubeletServingCert(`${name}-kubelet-serving`, host);

        if (!args.initNode) {
            this.init = step(`${name}-init`, {
                connection: args.connection,
                target: targetOf(host),
                ...initCall(spec, host),
                stdin: pulumi.all([args.pki.sharedFiles, kubeletServing]).apply(([files, serving]) => encodeBundle({ ...files, ...serving })),
                secretStdin: true,
            }, { parent: this, dependsOn: [args.prepare] });
            // Its labels and taints, like every other node's (no drain on
            // delete: this node goes last, with the cluster).
            this.node = step(`${name}-node`, {
                connection: args.connection,
                target: targetOf(host),
                ...nodeCall(host, false),
            }, { parent: this, dependsOn: [this.init] });
            this.ready = this.node;
        } else {
            this.joinSteps = joinNode(name, {
                spec,
                host,
                connection: args.connection,
                prepare: args.prepare,
                initNode: args.initNode,
                caCertPem: args.pki.caCertPem,
                caCertHash: args.pki.discoveryHash,
                controlPlanePki: args.pki.sharedFiles.apply((f): Record<string, string> => ({ ...f })),
                after: args.after,
                kubeletServing,
            }, this);
            this.ready = this.joinSteps.node;
        }
        this.registerOutputs({});
    }
}
