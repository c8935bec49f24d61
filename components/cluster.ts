import * as pulumi from "@pulumi/pulumi";
import * as k8s from "@pulumi/kubernetes";
import { Cni } from "./addons/cni";
import { ControlPlane } from "./controlPlane";
import { Host } from "./host";
import { InitNode } from "./join";
import { hostPort, initHost } from "./kubeadm/config";
import { ClusterSecrets, ClusterSpec, HostSpec, Role, isControlPlane } from "./model";
import { Pki, renderKubeconfig } from "./pki";
import { StepConnection } from "./step";
import { Worker } from "./worker";

/** SSH retries: hosts that are still booting or briefly unreachable. */
export const SSH_DIAL_ERROR_LIMIT = 20;
export const SSH_PER_DIAL_TIMEOUT_SECONDS = 30;

export interface ClusterArgs {
    spec: ClusterSpec;
    secrets: ClusterSecrets;
    /** Test-only: do not wait for add-on pods to become ready. */
    skipAddonAwait?: boolean;
}

/** A node as reported in the stack outputs. */
export interface NodeSummary {
    name: string;
    roles: Role[];
    address: string;
    internalAddress?: string;
}

/**
 * A kubeadm cluster on existing hosts. The phases, in order:
 *
 *   1. PKI in stack state (CAs, service-account key, admin certificate)
 *   2. check and prepare every host, all in parallel
 *   3. `kubeadm init` on the first control plane
 *   4. join the other control planes, one at a time
 *   5. join the workers, in parallel, as soon as init is done
 *   6. Kubernetes provider from the generated admin credentials
 *   7. pod network (CNI)
 *
 * Order comes from resource dependencies, so teardown runs it backwards:
 * add-ons, then drain -> reset -> forget each joined node, the first control
 * plane last.
 */
export class Cluster extends pulumi.ComponentResource {
    public readonly kubeconfig: pulumi.Output<string>;
    public readonly apiEndpoint: string;
    public readonly nodes: NodeSummary[];
    public readonly provider: k8s.Provider;

    constructor(name: string, args: ClusterArgs, opts?: pulumi.ComponentResourceOptions) {
        super("kubeadm:index:Cluster", name, {}, opts);
        const { spec, secrets } = args;
        const child = { parent: this };
        const connect = (h: HostSpec) => connection(h, secrets);

        // 1. PKI
        const pki = new Pki(`${name}-pki`, { clusterName: spec.clusterName }, child);

        // 2. check and prepare every host
        const hosts = new Map<string, Host>();
        for (const h of spec.hosts) {
            const earlierFacts = [...hosts.values()].map((x) => x.reportedFacts);
            hosts.set(h.name, new Host(h.name, { spec, host: h, connection: connect(h), earlierFacts }, child));
        }
        const prepared = (h: HostSpec) => hosts.get(h.name)!.prepare;

        // 3. init the first control plane
        const first = initHost(spec);
        const firstConnection = connect(first);
        const firstCp = new ControlPlane(first.name, {
            spec, host: first, connection: firstConnection, prepare: prepared(first), pki,
        }, child);
        const initNode: InitNode = { connection: firstConnection, user: first.user, init: firstCp.init! };

        // 4. join the other control planes one at a time
        let previous: pulumi.Resource = firstCp.ready;
        for (const h of spec.hosts.filter((x) => isControlPlane(x) && x.name !== first.name)) {
            const cp = new ControlPlane(h.name, {
                spec, host: h, connection: connect(h), prepare: prepared(h), pki, initNode, after: [previous],
            }, child);
            previous = cp.ready;
        }

        // 5. join the workers in parallel
        for (const h of spec.hosts.filter((x) => !isControlPlane(x))) {
            new Worker(h.name, {
                spec, host: h, connection: connect(h), prepare: prepared(h), initNode, caCertHash: pki.discoveryHash,
            }, child);
        }

        // 6. Kubernetes provider from the generated admin credentials
        this.apiEndpoint = `https://${hostPort(spec.apiServer.address, spec.apiServer.port)}`;
        this.kubeconfig = pulumi.secret(pulumi.all([pki.caCertPem, pki.adminCertPem, pki.adminKeyPem]).apply(
            ([ca, cert, key]) => renderKubeconfig({
                clusterName: spec.clusterName, server: this.apiEndpoint, caCertPem: ca, clientCertPem: cert, clientKeyPem: key,
            })));
        this.provider = new k8s.Provider(`${name}-k8s`, {
            kubeconfig: this.kubeconfig,
            // Teardown must finish even when the hosts are already gone.
            deleteUnreachable: true,
        }, { ...child, dependsOn: [firstCp.init!] });

        // 7. pod network
        new Cni(`${name}-cni`, { network: spec.network, provider: this.provider, skipAwait: args.skipAddonAwait }, child);

        this.nodes = spec.hosts.map((h) => ({
            name: h.name,
            roles: h.roles,
            address: h.address,
            ...(h.internalAddress ? { internalAddress: h.internalAddress } : {}),
        }));
        this.registerOutputs({ apiEndpoint: this.apiEndpoint, nodes: this.nodes, kubeconfig: this.kubeconfig });
    }
}

/** SSH connection to a host; the private key stays a secret. */
export function connection(host: HostSpec, secrets: ClusterSecrets): StepConnection {
    return {
        host: host.address,
        port: host.port,
        user: host.user,
        privateKey: pulumi.secret(secrets.sshPrivateKey),
        dialErrorLimit: SSH_DIAL_ERROR_LIMIT,
        perDialTimeout: SSH_PER_DIAL_TIMEOUT_SECONDS,
    };
}
