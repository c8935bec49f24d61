/**
 * kubeadm v1beta4 configuration, built as typed objects and serialised with a
 * YAML library (never by string concatenation). Field names follow
 * kubernetes/kubernetes cmd/kubeadm/app/apis/kubeadm/v1beta4/types.go; in
 * v1beta4 every `extraArgs`/`kubeletExtraArgs` is a list of `{name, value}`.
 */
import * as YAML from "yaml";
import { ClusterSpec, ExtraArg, HostSpec, Taint, isWorker, nodeAddress } from "../model";
import { isIp } from "../net";

export const KUBEADM_API_VERSION = "kubeadm.k8s.io/v1beta4";
/** containerd's CRI socket (the containerd.io package default). */
export const CRI_SOCKET = "unix:///var/run/containerd/containerd.sock";

/** The taint kubeadm puts on control planes (its default when nodeRegistration.taints is not set). */
export const CONTROL_PLANE_TAINT: Taint = { key: "node-role.kubernetes.io/control-plane", effect: "NoSchedule" };

export interface NodeRegistrationOptions {
    name: string;
    criSocket: string;
    /** `[]` makes a control plane schedulable; absent means kubeadm's default. */
    taints?: Taint[];
    kubeletExtraArgs?: ExtraArg[];
    imagePullPolicy?: "Always" | "IfNotPresent" | "Never";
    ignorePreflightErrors?: string[];
}

export interface APIEndpoint {
    advertiseAddress?: string;
    bindPort: number;
}

export interface InitConfiguration {
    apiVersion: typeof KUBEADM_API_VERSION;
    kind: "InitConfiguration";
    localAPIEndpoint: APIEndpoint;
    nodeRegistration: NodeRegistrationOptions;
}

export interface ControlPlaneComponent {
    extraArgs?: ExtraArg[];
}

export interface ClusterConfiguration {
    apiVersion: typeof KUBEADM_API_VERSION;
    kind: "ClusterConfiguration";
    clusterName: string;
    kubernetesVersion: string;
    controlPlaneEndpoint: string;
    imageRepository: string;
    encryptionAlgorithm: "RSA-2048" | "RSA-3072" | "RSA-4096" | "ECDSA-P256";
    networking: { podSubnet: string; serviceSubnet: string; dnsDomain: string };
    apiServer: ControlPlaneComponent & { certSANs: string[] };
    controllerManager: ControlPlaneComponent;
    scheduler: ControlPlaneComponent;
}

/**
 * A JoinConfiguration without its `discovery` section: the join script
 * appends that (API endpoint, bootstrap token, CA hash) from checked values,
 * so the token lands in exactly that field.
 */
export interface JoinConfiguration {
    apiVersion: typeof KUBEADM_API_VERSION;
    kind: "JoinConfiguration";
    nodeRegistration: NodeRegistrationOptions;
    controlPlane?: { localAPIEndpoint: APIEndpoint };
}

export interface KubeletConfiguration {
    apiVersion: "kubelet.config.k8s.io/v1beta1";
    kind: "KubeletConfiguration";
    cgroupDriver: "systemd";
    [field: string]: unknown;
}

export interface KubeProxyConfiguration {
    apiVersion: "kubeproxy.config.k8s.io/v1alpha1";
    kind: "KubeProxyConfiguration";
    mode: string;
    [field: string]: unknown;
}

/** `host:port`, bracketing IPv6 literals. */
export function hostPort(host: string, port: number): string {
    return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The first control-plane host: where `kubeadm init` runs. */
export function initHost(spec: ClusterSpec): HostSpec {
    const cp = spec.hosts.find((h) => h.roles.includes("control-plane"));
    if (!cp) {
        throw new Error("no control-plane host (config validation should have caught this)");
    }
    return cp;
}

/**
 * The address nodes use to reach the API: the user's stable endpoint (load
 * balancer or VIP) when given, else the init node's cluster address.
 */
export function controlPlaneEndpoint(spec: ClusterSpec): string {
    const host = spec.apiServer.explicitAddress ? spec.apiServer.address : nodeAddress(initHost(spec));
    return hostPort(host, spec.apiServer.port);
}

/**
 * The extra names and addresses of the API server certificate (kubeadm
 * `certSANs`): the address in the kubeconfig, loopback, and the user's extra
 * SANs. kubeadm adds each control plane's own node name and advertise
 * address, the controlPlaneEndpoint and the in-cluster names by itself, so
 * this list does not change when a control plane is added. Sorted for a
 * stable diff.
 */
export function apiServerCertSans(spec: ClusterSpec): string[] {
    return [...new Set<string>([spec.apiServer.address, "127.0.0.1", "localhost", ...spec.apiServer.extraSans])].sort();
}

function nodeRegistration(spec: ClusterSpec, host: HostSpec): NodeRegistrationOptions {
    const reg: NodeRegistrationOptions = {
        name: host.name,
        criSocket: CRI_SOCKET,
        imagePullPolicy: "IfNotPresent",
    };
    const args: ExtraArg[] = [];
    if (host.internalAddress) args.push({ name: "node-ip", value: host.internalAddress });
    args.push(...spec.kubeadm.kubeletExtraArgs.filter((a) => a.name !== "node-ip" || !host.internalAddress));
    if (args.length > 0) reg.kubeletExtraArgs = args;
    if (spec.kubeadm.ignorePreflightErrors.length > 0) reg.ignorePreflightErrors = [...spec.kubeadm.ignorePreflightErrors];
    // A control plane that is also a worker must be schedulable: no control-
    // plane taint at all, rather than removing it later. The user's taints are
    // there from registration on (the node step keeps them in step later);
    // setting taints replaces kubeadm's default, so a control plane lists its own.
    const cp = host.roles.includes("control-plane");
    if (cp && isWorker(host)) reg.taints = [...host.taints];
    else if (host.taints.length > 0) reg.taints = [...(cp ? [CONTROL_PLANE_TAINT] : []), ...host.taints];
    return reg;
}

function advertiseAddress(host: HostSpec): string | undefined {
    const addr = nodeAddress(host);
    return isIp(addr) ? addr : undefined;
}

function withArgs(args: ExtraArg[]): ControlPlaneComponent {
    return args.length > 0 ? { extraArgs: args } : {};
}

/** ClusterConfiguration for the cluster. */
export function clusterConfiguration(spec: ClusterSpec): ClusterConfiguration {
    return {
        apiVersion: KUBEADM_API_VERSION,
        kind: "ClusterConfiguration",
        clusterName: spec.clusterName,
        kubernetesVersion: `v${spec.kubernetesVersion}`,
        controlPlaneEndpoint: controlPlaneEndpoint(spec),
        imageRepository: spec.kubeadm.imageRepository,
        encryptionAlgorithm: "ECDSA-P256",
        networking: {
            podSubnet: spec.network.podSubnet,
            serviceSubnet: spec.network.serviceSubnet,
            dnsDomain: spec.network.dnsDomain,
        },
        apiServer: { certSANs: apiServerCertSans(spec), ...withArgs(spec.kubeadm.apiServerExtraArgs) },
        controllerManager: withArgs(spec.kubeadm.controllerManagerExtraArgs),
        scheduler: withArgs(spec.kubeadm.schedulerExtraArgs),
    };
}

/** Where every node's kubelet serving certificate and key are (installed by init/join from their stdin bundle; lib.sh install_kubelet_serving). */
export const KUBELET_SERVING_CERT_FILE = "/var/lib/kubelet/pki/kubeadm-pulumi-serving.crt";
export const KUBELET_SERVING_KEY_FILE = "/var/lib/kubelet/pki/kubeadm-pulumi-serving.key";

/**
 * KubeletConfiguration: systemd cgroups (containerd is configured to match),
 * the serving certificate the program issues from the cluster CA (the same
 * paths on every node, so one cluster-wide configuration serves them all),
 * plus the user's fields.
 */
export function kubeletConfiguration(spec: ClusterSpec): KubeletConfiguration {
    return {
        ...spec.kubeadm.kubeletConfiguration,
        apiVersion: "kubelet.config.k8s.io/v1beta1",
        kind: "KubeletConfiguration",
        cgroupDriver: "systemd",
        tlsCertFile: KUBELET_SERVING_CERT_FILE,
        tlsPrivateKeyFile: KUBELET_SERVING_KEY_FILE,
    };
}

export function kubeProxyConfiguration(spec: ClusterSpec): KubeProxyConfiguration {
    return {
        ...spec.kubeadm.kubeProxyConfiguration,
        apiVersion: "kubeproxy.config.k8s.io/v1alpha1",
        kind: "KubeProxyConfiguration",
        mode: spec.kubeadm.proxyMode,
    };
}

/** The multi-document file `kubeadm init --config` reads on the first control plane. Contains no secret. */
export function renderInitConfig(spec: ClusterSpec, host: HostSpec): string {
    const init: InitConfiguration = {
        apiVersion: KUBEADM_API_VERSION,
        kind: "InitConfiguration",
        localAPIEndpoint: { ...optional("advertiseAddress", advertiseAddress(host)), bindPort: spec.apiServer.port },
        nodeRegistration: nodeRegistration(spec, host),
    };
    return renderDocuments([init, clusterConfiguration(spec), kubeletConfiguration(spec), kubeProxyConfiguration(spec)]);
}

/**
 * The JoinConfiguration for one host, without `discovery` (see
 * `JoinConfiguration`): secret-free and readable in `pulumi preview --diff`.
 */
export function renderJoinConfig(spec: ClusterSpec, host: HostSpec, asControlPlane: boolean): string {
    const join: JoinConfiguration = {
        apiVersion: KUBEADM_API_VERSION,
        kind: "JoinConfiguration",
        nodeRegistration: nodeRegistration(spec, host),
    };
    if (asControlPlane) {
        join.controlPlane = {
            localAPIEndpoint: { ...optional("advertiseAddress", advertiseAddress(host)), bindPort: spec.apiServer.port },
        };
    }
    return renderDocuments([join]);
}

/**
 * The discovery section the join script appends (components/scripts/join.sh
 * writes the same lines); for tests that feed a complete file to kubeadm.
 */
export function discoverySection(apiServerEndpoint: string, token: string, caCertHash: string): string {
    return `discovery:\n  bootstrapToken:\n    apiServerEndpoint: "${apiServerEndpoint}"\n    token: "${token}"\n    caCertHashes:\n    - "${caCertHash}"\n`;
}

function optional<K extends string>(key: K, value: string | undefined): Partial<Record<K, string>> {
    return value === undefined ? {} : ({ [key]: value } as Record<K, string>);
}

/** Serialise documents as one multi-document YAML file. */
export function renderDocuments(docs: object[]): string {
    return docs.map((d) => YAML.stringify(d, { lineWidth: 0 })).join("---\n");
}
