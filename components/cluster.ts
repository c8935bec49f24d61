import * as pulumi from "@pulumi/pulumi";
import * as k8s from "@pulumi/kubernetes";
import { Cni } from "./addons/cni";
import { Addons } from "./addons";
import { ControlPlane } from "./controlPlane";
import { Host, targetOf } from "./host";
import { InitNode } from "./join";
import { hostPort, initHost } from "./kubeadm/config";
import { ClusterSecrets, ClusterSpec, HostSpec, Role, isControlPlane } from "./model";
import { Pki, renderKubeconfig } from "./pki";
import { hostsReachable } from "./reach";
import { fixedSettingsCheck } from "./settings";
import { StepConnection } from "./step";
import { Users } from "./users";
import { Worker } from "./worker";

/**
 * SSH dial retries per step. Few and short: an unreachable host is caught
 * before any step by the reachability check (reach.ts); these only ride out
 * a brief hiccup (sshd restarting, MaxStartups under many parallel steps).
 */
export const SSH_DIAL_ERROR_LIMIT = 5;
export const SSH_PER_DIAL_TIMEOUT_SECONDS = 10;

export interface ClusterArgs {
    spec: ClusterSpec;
    secrets: ClusterSecrets;
    /** Test-only: do not wait for add-on pods to become ready. */
    skipAddonAwait?: boolean;
    /** Test-only: skip the SSH reachability check at `pulumi up` (mock tests have no hosts). Never set by the program. */
    skipReachabilityCheck?: boolean;
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
 *   2. refuse changes a live cluster cannot take; check every host answers SSH
 *   3. install the step scripts, check and prepare every host, all in parallel
 *   4. `kubeadm init` on the first control plane
 *   5. join the other control planes, one at a time
 *   6. join the workers, in parallel, as soon as init is done
 *   7. Kubernetes provider from the generated admin credentials
 *   8. pod network (CNI), once every node has joined
 *   9. add-ons (ingress controller and Gateway API CRDs, metrics-server,
 *      dashboard behind the ingress), once the pod network is installed
 *  10. the smoke test, after all of them
 *  11. users: client certificate, RBAC binding, kubeconfig each
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
    public readonly addons: Addons;
    /** Kubeconfig per entry of `users`, by name; a secret. */
    public readonly userKubeconfigs: pulumi.Output<Record<string, string>>;
    /** Resolves once the config changes are accepted and every host answered (rejects with the reason otherwise). */
    public readonly ready: pulumi.Output<unknown>;

    constructor(name: string, args: ClusterArgs, opts?: pulumi.ComponentResourceOptions) {
        super("kubeadm:index:Cluster", name, {}, opts);
        const { spec, secrets } = args;
        const child = { parent: this };
        const connect = (h: HostSpec) => connection(h, secrets);

        // 1. PKI
        const pki = new Pki(`${name}-pki`, { clusterName: spec.clusterName }, child);

        // 2. nothing is touched unless every change is one the cluster can take and every host answers
        const accepted = fixedSettingsCheck(name, spec, child);
        const reachable = args.skipReachabilityCheck ? pulumi.output(undefined) : hostsReachable(spec.hosts, (h) => bastionPrivateKey(h, secrets));
        const ready = pulumi.all([accepted, reachable]);
        this.ready = ready;

        // 3. install the scripts, check and prepare every host
        const hosts = new Map<string, Host>();
        for (const h of spec.hosts) {
            const earlierFacts = [...hosts.values()].map((x) => x.reportedFacts);
            hosts.set(h.name, new Host(h.name, { spec, host: h, connection: connect(h), earlierFacts, ready }, child));
        }
        const prepared = (h: HostSpec) => hosts.get(h.name)!.prepare;

        // 4. init the first control plane
        const first = initHost(spec);
        const firstConnection = connect(first);
        const firstCp = new ControlPlane(first.name, {
            spec, host: first, connection: firstConnection, prepare: prepared(first), pki,
        }, child);
        const initNode: InitNode = { connection: firstConnection, target: targetOf(first), init: firstCp.init! };
        const joined: pulumi.Resource[] = [firstCp.ready];

        // 5. join the other control planes one at a time
        let previous: pulumi.Resource = firstCp.init!;
        for (const h of spec.hosts.filter((x) => isControlPlane(x) && x.name !== first.name)) {
            const cp = new ControlPlane(h.name, {
                spec, host: h, connection: connect(h), prepare: prepared(h), pki, initNode, after: [previous],
            }, child);
            previous = cp.ready;
            joined.push(cp.ready);
        }

        // 6. join the workers in parallel
        for (const h of spec.hosts.filter((x) => !isControlPlane(x))) {
            const worker = new Worker(h.name, {
                spec, host: h, connection: connect(h), prepare: prepared(h), initNode, caCertPem: pki.caCertPem, caCertHash: pki.discoveryHash,
                kubeletServing: pki.kubeletServingCert(`${h.name}-kubelet-serving`, h),
            }, child);
            joined.push(worker.steps.node);
        }

        // 7. Kubernetes provider from the generated admin credentials
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

        // 8. pod network: after every node joined, so that its failure
        // cannot stop a join half-way (and strand a join token)
        const cni = spec.network.cni;
        let network: pulumi.Resource[] = joined;
        if (cni !== "none") {
            const c = new Cni(`${name}-cni`, {
                network: { ...spec.network, cni }, charts: spec.charts, provider: this.provider, skipAwait: args.skipAddonAwait, after: joined,
                imageRegistry: spec.addons.imageRegistry,
            }, child);
            network = [c.release];
        }

        // 9. add-ons once the pod network runs; 10. the smoke test after them
        this.addons = new Addons(`${name}-addons`, {
            spec,
            provider: this.provider,
            firstNode: { name: first.name, connection: firstConnection, target: targetOf(first), init: firstCp.init! },
            after: network,
            dashboardTlsKey: secrets.dashboardTlsKey,
            skipAwait: args.skipAddonAwait,
        }, child);
        // 9. users: a certificate, an RBAC binding and a kubeconfig each
        this.userKubeconfigs = new Users(`${name}-users`, {
            users: spec.users, clusterName: spec.clusterName, server: this.apiEndpoint,
            caCertPem: pki.caCertPem, caKeyPem: pki.caKeyPem, provider: this.provider,
        }, child).kubeconfigs;

        this.nodes = spec.hosts.map((h) => ({
            name: h.name,
            roles: h.roles,
            address: h.address,
            ...(h.internalAddress ? { internalAddress: h.internalAddress } : {}),
        }));
        this.registerOutputs({ apiEndpoint: this.apiEndpoint, nodes: this.nodes, kubeconfig: this.kubeconfig });
    }
}

/** The private key a host's steps sign in with (its own, else ssh.privateKey); undefined with the ssh-agent only. */
export function hostPrivateKey(host: HostSpec, secrets: ClusterSecrets): pulumi.Output<string> | undefined {
    return secrets.hostPrivateKeys?.[host.name] ?? secrets.sshPrivateKey;
}

/** The private key for a host's bastion: the bastion's own, else the host's. */
export function bastionPrivateKey(host: HostSpec, secrets: ClusterSecrets): pulumi.Output<string> | undefined {
    return secrets.bastionPrivateKeys?.[host.name] ?? hostPrivateKey(host, secrets);
}

/**
 * SSH connection to a host, built from that host's settings only (so a
 * change to another host's bastion, key or user leaves this host's steps
 * alone). The command SDK sends it as one secret (@pulumi/command 1.2.1
 * `remote/command.js` wraps `connection` in `pulumi.secret`), as the provider
 * stores it, so it does not compare as changed against the state on every
 * run (the spurious diff of pulumi-command#447; tests/harness.ts models it).
 *
 * No `agentSocketPath`: with `ssh.useAgent` the provider finds the agent in
 * SSH_AUTH_SOCK itself (pulumi-command 1.2.1 `tryGetDefaultAgentSocket`),
 * because the socket path changes with every login: as an input it would
 * re-run every step, and a stale path kept in state fails the delete
 * (`dialAgent` error).
 */
export function connection(host: HostSpec, secrets: ClusterSecrets): StepConnection {
    const key = hostPrivateKey(host, secrets);
    const b = host.bastion;
    const bastionKey = b ? bastionPrivateKey(host, secrets) : undefined;
    return {
        host: host.address,
        port: host.port,
        user: host.user,
        ...(key !== undefined ? { privateKey: key } : {}),
        ...(host.hostKey !== undefined ? { hostKey: host.hostKey } : {}),
        dialErrorLimit: SSH_DIAL_ERROR_LIMIT,
        perDialTimeout: SSH_PER_DIAL_TIMEOUT_SECONDS,
        ...(b
            ? {
                  proxy: {
                      host: b.address,
                      port: b.port,
                      user: b.user,
                      ...(bastionKey !== undefined ? { privateKey: bastionKey } : {}),
                      ...(b.hostKey !== undefined ? { hostKey: b.hostKey } : {}),
                      dialErrorLimit: SSH_DIAL_ERROR_LIMIT,
                      perDialTimeout: SSH_PER_DIAL_TIMEOUT_SECONDS,
                  },
              }
            : {}),
    };
}
