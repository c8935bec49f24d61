/**
 * The validated, typed model of a cluster. `config/` builds it from stack
 * configuration; every component and renderer reads only this model, never
 * `pulumi.Config` (data flows one way: config -> model -> components -> hosts).
 */

/** What a host does in the cluster. A host may have both roles. */
export type Role = "control-plane" | "worker";
export const ROLES: readonly Role[] = ["control-plane", "worker"];

/** Pod network add-ons the program knows how to install. */
export type CniName = "flannel" | "calico" | "cilium";
export const CNIS: readonly CniName[] = ["flannel", "calico", "cilium"];
/** `network.cni`: one of CNIS, or "none" (the user installs the pod network). */
export type CniChoice = CniName | "none";
export const CNI_CHOICES: readonly CniChoice[] = [...CNIS, "none"];

/** kube-proxy modes that are not deprecated (ipvs is deprecated since 1.35). */
export type ProxyMode = "iptables" | "nftables";
export const PROXY_MODES: readonly ProxyMode[] = ["iptables", "nftables"];

/** Package-manager families the prepare step has a variant for. */
export type OsFamily = "debian" | "rhel";
export const OS_FAMILIES: readonly OsFamily[] = ["debian", "rhel"];

/** One `--flag=value` for a control-plane component (kubeadm v1beta4 `extraArgs` item). */
export interface ExtraArg {
    name: string;
    value: string;
}

/** One host of the cluster, with its connection settings resolved. */
export interface HostSpec {
    /** Kubernetes node name; an RFC 1123 label, unique in the cluster. */
    name: string;
    /** Where SSH connects: an IP address or DNS name. */
    address: string;
    /** Node IP / API advertise address, when it differs from `address`. */
    internalAddress?: string;
    /** Sorted, de-duplicated roles. */
    roles: Role[];
    /** SSH user for this host (stack-wide `ssh.user` unless overridden). */
    user: string;
    /** SSH port for this host (stack-wide `ssh.port` unless overridden). */
    port: number;
    /** Node labels the program keeps on the node (besides the role label). */
    labels: Readonly<Record<string, string>>;
    /** Node taints the program keeps on the node (besides kubeadm's control-plane taint). */
    taints: readonly Taint[];
    /** The jump host SSH goes through to reach this host (`hosts[].bastion`, else `ssh.bastion`); absent: direct. */
    bastion?: BastionSpec;
    /** The host's pinned SSH host key, `<type> <base64>` (`hosts[].hostKey`); absent: not checked. */
    hostKey?: string;
    /** Authenticate with the ssh-agent at SSH_AUTH_SOCK (`ssh.useAgent`); set only when true. */
    useAgent?: true;
}

/** A jump host (bastion): SSH reaches a host through it, as OpenSSH's ProxyJump does. */
export interface BastionSpec {
    /** IP address or DNS name of the jump host, as seen from the machine running Pulumi. */
    address: string;
    /** SSH user on the jump host (default: the user of the host reached through it). */
    user: string;
    port: number;
    /** The jump host's pinned SSH host key, `<type> <base64>`; absent: not checked. */
    hostKey?: string;
}

/** A node taint. */
export interface Taint {
    key: string;
    value?: string;
    effect: "NoSchedule" | "PreferNoSchedule" | "NoExecute";
}

/** Network settings of the cluster. */
export interface NetworkSpec {
    podSubnet: string;
    serviceSubnet: string;
    dnsDomain: string;
    cni: CniChoice;
}

/** How clients and nodes reach the Kubernetes API. */
export interface ApiServerSpec {
    /** Address (IP or DNS name) written into the kubeconfig and used as kubeadm `controlPlaneEndpoint`. */
    address: string;
    /** API server port (kubeadm default 6443). */
    port: number;
    /** Extra subject alternative names for the API server certificate, as given by the user. */
    extraSans: string[];
    /** True when the user set `apiServer.address` (a stable endpoint such as a load balancer or VIP). */
    explicitAddress: boolean;
}

/** The validated pass-through of kubeadm settings people tune. */
export interface KubeadmSpec {
    imageRepository: string;
    apiServerExtraArgs: ExtraArg[];
    controllerManagerExtraArgs: ExtraArg[];
    schedulerExtraArgs: ExtraArg[];
    kubeletExtraArgs: ExtraArg[];
    /** kube-proxy mode. */
    proxyMode: ProxyMode;
    /** Extra KubeletConfiguration fields (kubelet.config.k8s.io/v1beta1), merged over the program's defaults. */
    kubeletConfiguration: Record<string, unknown>;
    /** Extra KubeProxyConfiguration fields (kubeproxy.config.k8s.io/v1alpha1). */
    kubeProxyConfiguration: Record<string, unknown>;
    /** kubeadm's own preflight checks to ignore at init and join (`nodeRegistration.ignorePreflightErrors`). */
    ignorePreflightErrors: string[];
}

/** Preflight checks a user may downgrade to warnings (like kubeadm's --ignore-preflight-errors). */
export type PreflightCheck = "os" | "kernel" | "cgroup" | "cpu" | "memory" | "hostname" | "command" | "systemd" | "runtime" | "port" | "source" | "disk";
export const PREFLIGHT_CHECKS: readonly PreflightCheck[] = [
    "os", "kernel", "cgroup", "cpu", "memory", "hostname", "command", "systemd", "runtime", "port", "source", "disk",
];

export interface PreflightSpec {
    /** Checks whose problems are reported as warnings instead of failing the host. */
    ignore: PreflightCheck[];
}

/**
 * One package repository that serves every package the program installs
 * (containerd.io, kubelet, kubeadm, kubectl, kubernetes-cni) instead of Docker's
 * and pkgs.k8s.io: for air-gapped sites and mirrors.
 */
export interface LocalRepositorySpec {
    /** apt source after `deb [options]`: `URL SUITE [COMPONENT...]`, e.g. `http://10.0.0.5/debs ./`. */
    apt?: string;
    /** dnf `baseurl`. */
    rpm?: string;
    /** URL of the repository's signing key; without it the repository is trusted unsigned (`trusted=yes` / `gpgcheck=0`). */
    keyUrl?: string;
}

export interface PackagesSpec {
    localRepository?: LocalRepositorySpec;
    /** A mirror of pkgs.k8s.io's `core:/stable:` base, same layout (`<base>/v1.36/deb/`); default KUBERNETES_REPO_BASE. */
    kubernetesRepository?: string;
    /** A mirror of download.docker.com's `linux` base, same layout (`<base>/debian`, `<base>/centos`); default DOCKER_REPO_BASE. */
    containerdRepository?: string;
}

/**
 * How one Helm chart is installed, against its pin in `versions.ts`: from a
 * mirror repository serving the same chart and version (`repo`), or a chart
 * archive / directory on the machine that runs Pulumi (`path`: air-gapped
 * sites; `pulumi preview` works offline), and with extra values merged over
 * the program's (image locations for mirrors, resources, ...).
 */
export interface ChartSource {
    repo?: string;
    path?: string;
    values?: Record<string, unknown>;
}

/** How containerd reaches one registry (`/etc/containerd/certs.d/<registry>/hosts.toml`). */
export interface RegistrySpec {
    /** The registry as image references name it (`registry.k8s.io`, `10.0.0.5:5443`), or `_default` for all. */
    registry: string;
    /** Mirrors tried first, in order (http(s) URLs). */
    mirrors: string[];
    /** PEM CA trusted for the registry and its mirrors. */
    ca?: string;
    skipVerify: boolean;
    /** The registry itself speaks plain HTTP. */
    plainHttp: boolean;
}

export interface ContainerdSpec {
    registries: RegistrySpec[];
    /** CRI `restrict_oom_score_adj`: for hosts that refuse a negative oom_score_adj (containers such as LXC, systemd-nspawn). */
    restrictOomScoreAdj: boolean;
}

/** How the ingress controller is reached from outside the cluster. */
export type IngressExposure = "hostNetwork" | "nodePort";
export const INGRESS_EXPOSURES: readonly IngressExposure[] = ["hostNetwork", "nodePort"];
/** Ingress controllers the program knows how to install. */
export type IngressController = "traefik";
export const INGRESS_CONTROLLERS: readonly IngressController[] = ["traefik"];
/** What the dashboard's login token may do. */
export type DashboardAccess = "view" | "cluster-admin";
export const DASHBOARD_ACCESS: readonly DashboardAccess[] = ["view", "cluster-admin"];

export interface IngressSpec {
    enabled: boolean;
    controller: IngressController;
    exposure: IngressExposure;
    /** Node names the controller runs on (one pod each). */
    nodes: string[];
    /** Ports clients use: 80/443 on the nodes (hostNetwork) or the NodePorts. */
    httpPort: number;
    httpsPort: number;
    /** Gateway API: install its standard CRDs and serve Gateway/HTTPRoute too. */
    gatewayApi: boolean;
    /** Where the Gateway API CRD manifest comes from: the pinned release URL, a mirror URL, or a local file. */
    gatewayApiCrds: string;
}

export interface DashboardSpec {
    enabled: boolean;
    /** Host name the dashboard is published at through the ingress. */
    host: string;
    access: DashboardAccess;
    /** A certificate (PEM, public) the user supplies; its key is a secret (ClusterSecrets). Absent: issued by the ingress CA. */
    tlsCertificate?: string;
}

export interface AddonsSpec {
    ingress: IngressSpec;
    dashboard: DashboardSpec;
    metricsServer: { enabled: boolean };
    smokeTest: { enabled: boolean };
    /**
     * Registry (`host[:port][/path]`) that replaces the registry part of every
     * add-on image (and the CNI's, where the program knows the chart's image
     * values), keeping each image's repository path and tag. Absent: upstream registries.
     */
    imageRegistry?: string;
}

/**
 * A person or tool given access to the cluster with a client certificate
 * from the cluster CA (`users`): CN is the name, O the group.
 */
export interface UserSpec {
    /** Kubernetes user name (the certificate's CN). */
    name: string;
    /** Groups (the certificate's O): at most one, see config/users.ts. */
    groups: string[];
    /** The ClusterRole bound to the user. */
    role: string;
    /** Bind in this namespace (a RoleBinding) instead of cluster-wide (a ClusterRoleBinding). */
    namespace?: string;
}

/**
 * An HTTP(S) proxy the hosts' package managers, downloads and containerd go
 * through (`proxy`). URLs are `http(s)://host[:port]` without credentials.
 */
export interface ProxySpec {
    http?: string;
    https?: string;
    /** What the user added to the no-proxy list; the program adds the cluster's own addresses (see noProxyList). */
    noProxy: string[];
}

/** A file on the machine running Pulumi that is copied to every host, with its content hash. */
export interface OfflineFile {
    /** As given in the stack config (relative to the project directory). */
    path: string;
    /** Hex SHA-256 of the content, taken when the program runs. */
    sha256: string;
}

/**
 * Fully offline installation (`offline`): a package repository archive and
 * image archives, copied to every host; packages then install from the
 * unpacked repository on the host, images are imported into containerd.
 */
export interface OfflineSpec {
    /** A .tar/.tar.gz/.tgz of a flat apt repository and/or an rpm repository. */
    packages?: OfflineFile;
    /** OCI or docker image archives (`ctr images import`). */
    images: OfflineFile[];
}

/** The whole cluster, validated. */
export interface ClusterSpec {
    /** Pulumi project name, used to label things the program owns. */
    clusterName: string;
    hosts: HostSpec[];
    /** Full patch version, e.g. "1.36.4". */
    kubernetesVersion: string;
    network: NetworkSpec;
    apiServer: ApiServerSpec;
    kubeadm: KubeadmSpec;
    preflight: PreflightSpec;
    packages: PackagesSpec;
    containerd: ContainerdSpec;
    /** Chart sources overriding the pinned upstream repositories, by chart name. */
    charts: Readonly<Record<string, ChartSource>>;
    addons: AddonsSpec;
    /** Users with a client certificate and an RBAC binding. */
    users: UserSpec[];
    /** HTTP(S) proxy for the hosts, when set. */
    proxy?: ProxySpec;
    /** Packages and images from archives copied to the hosts, when set. */
    offline?: OfflineSpec;
}

/** The SSH private keys; kept apart from the plain model so it can be logged and compared. All Pulumi secrets. */
export interface ClusterSecrets {
    /** `ssh.privateKey` (PEM/OpenSSH); absent when every host has its own key or the ssh-agent is used. */
    sshPrivateKey?: import("@pulumi/pulumi").Output<string>;
    /** `hosts[].privateKey`, by host name: overrides sshPrivateKey for that host. */
    hostPrivateKeys?: Readonly<Record<string, import("@pulumi/pulumi").Output<string>>>;
    /** The private key of each host's bastion, by host name, when the bastion has its own (`bastion.privateKey`); otherwise the host's key is used. */
    bastionPrivateKeys?: Readonly<Record<string, import("@pulumi/pulumi").Output<string>>>;
    /** Private key (PEM) of the dashboard certificate the user supplied (`addons.dashboard.tls.key`), a Pulumi secret. */
    dashboardTlsKey?: import("@pulumi/pulumi").Output<string>;
}

/**
 * An SSH user name the program accepts: a POSIX-portable name as `useradd`
 * takes it (lowercase letters, digits, '_', '.', '-', not starting with '-'
 * or a digit, at most 32 characters). The config check and the command
 * renderer share this one rule.
 */
export const USER_NAME = /^[a-z_][a-z0-9_.-]{0,31}$/;

export function isUserName(s: string): boolean {
    return USER_NAME.test(s);
}

export function isControlPlane(host: HostSpec): boolean {
    return host.roles.includes("control-plane");
}

export function isWorker(host: HostSpec): boolean {
    return host.roles.includes("worker");
}

/** The address a node advertises inside the cluster. */
export function nodeAddress(host: HostSpec): string {
    return host.internalAddress ?? host.address;
}

/** "1.36.4" -> "1.36". */
export function minorOf(version: string): string {
    return version.split(".").slice(0, 2).join(".");
}
