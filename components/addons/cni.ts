import * as pulumi from "@pulumi/pulumi";
import * as k8s from "@pulumi/kubernetes";
import { ChartSource, CniChoice, CniName, NetworkSpec } from "../model";
import { CNI_CHARTS, ChartPin } from "../versions";
import { flannelImageValues } from "./values";

/** Inputs of the pod network add-on. */
export interface CniArgs {
    network: NetworkSpec & { cni: CniName };
    /** Chart sources overriding the upstream repositories (stack config `charts`). */
    charts: Readonly<Record<string, ChartSource>>;
    /** Kubernetes provider built from the generated admin credentials. */
    provider: k8s.Provider;
    /** What must be done first: every node's join (so a CNI failure cannot interrupt a join). */
    after?: pulumi.Resource[];
    /** Test-only: do not wait for pods (there is no kubelet in the engine test tier). Never set by the program. */
    skipAwait?: boolean;
    /** `addons.imageRegistry`: where the CNI's images come from (flannel; the other charts take `charts.<chart>.values`). */
    imageRegistry?: string;
}

/**
 * The ports each CNI's nodes reach each other on, as `<port>/<proto>` (opened
 * by prepare where firewalld runs): flannel's VXLAN backend 8472/udp
 * (flannel Documentation/backends.md); Calico with the VXLANCrossSubnet pool
 * set below: BGP 179/tcp between nodes of one subnet, VXLAN 4789/udp across
 * subnets, Typha 5473/tcp (docs.tigera.io "Network requirements"); Cilium's
 * default VXLAN tunnel 8472/udp, health checks 4240/tcp and Hubble's peer
 * service 4244/tcp (docs.cilium.io "Firewall Rules"). `none`: the user's CNI,
 * the user's ports.
 */
export const CNI_PORTS: Readonly<Record<CniChoice, readonly string[]>> = {
    flannel: ["8472/udp"],
    calico: ["179/tcp", "4789/udp", "5473/tcp"],
    cilium: ["4240/tcp", "4244/tcp", "8472/udp"],
    none: [],
};

/**
 * Chart values per CNI. The one setting that matters everywhere: the pod CIDR
 * the CNI uses must equal kubeadm's `podSubnet` (which the controller-manager
 * splits into per-node ranges).
 */
export function cniValues(cni: CniName, network: NetworkSpec): Record<string, unknown> {
    switch (cni) {
        case "flannel":
            // flannel chart: `podCidr` (flannel-io/flannel chart/kube-flannel/values.yaml).
            return { podCidr: network.podSubnet };
        case "calico":
            // tigera-operator chart: the Installation's default IP pool (Calico's own default is 192.168.0.0/16).
            return {
                installation: {
                    calicoNetwork: {
                        ipPools: [{ cidr: network.podSubnet, encapsulation: "VXLANCrossSubnet", natOutgoing: "Enabled", nodeSelector: "all()" }],
                    },
                },
            };
        case "cilium":
            // Cilium's default IPAM ("cluster-pool", 10.0.0.0/8) ignores kubeadm's podSubnet;
            // "kubernetes" mode uses the node podCIDRs the controller-manager allocates from it.
            return { ipam: { mode: "kubernetes" } };
        default: {
            const unknown: never = cni;
            throw new Error(`unknown CNI ${unknown}`);
        }
    }
}

/** The values the CNI's release gets: the program's, the registry override's image locations, then the user's chart values. */
export function cniReleaseValues(cni: CniName, network: NetworkSpec, imageRegistry: string | undefined, extra: Record<string, unknown> | undefined): Record<string, unknown> {
    const images = cni === "flannel" ? flannelImageValues(imageRegistry) : {};
    return mergeValues(mergeValues(cniValues(cni, network), images), extra);
}

/**
 * The chart reference of a `helm.v3.Release`: the pinned chart from its
 * upstream repository, from a mirror repository (`charts.<name>.repo`), or a
 * local archive or directory (`charts.<name>.path`, nothing fetched: works
 * offline, including `pulumi preview`).
 */
export function chartReference(pin: ChartPin, source: ChartSource | undefined): Pick<k8s.helm.v3.ReleaseArgs, "chart" | "version" | "repositoryOpts"> {
    if (source?.path) return { chart: source.path };
    return { chart: pin.chart, version: pin.version, repositoryOpts: { repo: source?.repo ?? pin.repo } };
}

/** `extra` merged over `base` (objects merged key by key, anything else replaced). */
export function mergeValues(base: Record<string, unknown>, extra: Record<string, unknown> | undefined): Record<string, unknown> {
    const out: Record<string, unknown> = { ...base };
    for (const [k, v] of Object.entries(extra ?? {})) {
        const b = out[k];
        out[k] = v && typeof v === "object" && !Array.isArray(v) && b && typeof b === "object" && !Array.isArray(b)
            ? mergeValues(b as Record<string, unknown>, v as Record<string, unknown>)
            : v;
    }
    return out;
}

/**
 * The pod network, installed with `helm.v3.Release` (a custom resource, so a
 * preview of a brand-new stack works; `helm.v4.Chart` is a remote component
 * and the engine refuses it while the kubeconfig is still unknown). Note that
 * the Release loads its chart during `pulumi preview` too: offline, point
 * `charts.<name>` at a mirror or a local archive.
 */
export class Cni extends pulumi.ComponentResource {
    public readonly release: k8s.helm.v3.Release;

    constructor(name: string, args: CniArgs, opts?: pulumi.ComponentResourceOptions) {
        super("kubeadm:index:Cni", name, {}, opts);
        const pin: ChartPin = CNI_CHARTS[args.network.cni];
        // Retained on delete: the pod network goes away only with the cluster
        // (a change of network.cni is refused), and then every node's reset
        // removes its interfaces, rules and files, and the API objects go with
        // etcd. Uninstalling through the API first only makes `pulumi destroy`
        // wait (80 s for flannel's namespace on the cluster tier) and hang when
        // the API server is already gone.
        const child = { parent: this, provider: args.provider, retainOnDelete: true };

        const dependsOn: pulumi.Resource[] = [...(args.after ?? [])];
        if (pin.namespace !== "kube-system") {
            // CNI agents need hostNetwork and privileges: the namespace must allow them under Pod Security.
            dependsOn.push(new k8s.core.v1.Namespace(`${name}-namespace`, {
                metadata: { name: pin.namespace, labels: { "pod-security.kubernetes.io/enforce": "privileged" } },
            }, { ...child, dependsOn: args.after }));
        }
        this.release = new k8s.helm.v3.Release(`${name}-release`, {
            name: args.network.cni,
            ...chartReference(pin, args.charts[pin.chart]),
            namespace: pin.namespace,
            createNamespace: false,
            values: cniReleaseValues(args.network.cni, args.network, args.imageRegistry, args.charts[pin.chart]?.values),
            skipAwait: args.skipAwait ?? false,
            timeout: 600,
            atomic: false,
            cleanupOnFail: true,
        }, { ...child, dependsOn });
        this.registerOutputs({});
    }
}
