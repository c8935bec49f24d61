import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { HostFacts, checkAgainstEarlier, parseFacts } from "./facts";
import { ClusterSpec, HostSpec, isControlPlane, isWorker, minorOf } from "./model";
import { CNI_PORTS } from "./addons/cni";
import { renderContainerdConfig, renderCrictlConfig, renderRegistryHosts } from "./containerd";
import { library } from "./scripts";
import { ScriptCall, StepConnection, StepTarget, scriptsStep, sshEndpoint, step } from "./step";
import { CONTAINERD_VERSION, KubernetesMinor, PAUSE_TAG } from "./versions";
import { noProxyList, renderAptProxyConf, renderContainerdProxyDropIn } from "./proxy";
import { dockerRepoBase, kubernetesRepoBase, sourceLines } from "./sources";
import { OFFLINE_REPO_DIR, offlineCopies, offlineLine } from "./offline";

/** kubeadm's control-plane minimums (`ControlPlaneNumCPU`, `ControlPlaneMem` in kubeadm constants.go). */
export const CONTROL_PLANE_MIN_CPUS = 2;
export const CONTROL_PLANE_MIN_MEMORY_MB = 1700;

/**
 * TCP ports that must be free besides the API server's (kubeadm's port list,
 * UPSTREAM.md, kubernetes.io "Ports and Protocols"): etcd 2379-2380, kubelet
 * 10250, kube-proxy health 10256, controller-manager 10257, scheduler 10259.
 */
export const CONTROL_PLANE_PORTS = [2379, 2380, 10250, 10256, 10257, 10259];
export const WORKER_PORTS = [10250, 10256];

/** Inputs of one host. */
export interface HostArgs {
    spec: ClusterSpec;
    host: HostSpec;
    /** SSH connection to the host (the private key is a secret). */
    connection: StepConnection;
    /** Preflight facts of the hosts listed before this one, for the cross-host checks. */
    earlierFacts: pulumi.Output<HostFacts>[];
    /**
     * Resolves when the host may be touched at all (config changes accepted,
     * the host reachable); rejects with the reason otherwise. The first step
     * waits for it, so nothing runs on a host before.
     */
    ready: pulumi.Output<unknown>;
}

/** Where steps on `host` run, for their command text. */
export function targetOf(host: HostSpec): StepTarget {
    const b = host.bastion;
    return { node: host.name, user: host.user, address: host.address, port: host.port, ...(b ? { via: sshEndpoint(b.user, b.address, b.port) } : {}) };
}

/**
 * One machine: the step scripts installed, a read-only preflight that
 * reports every problem at once, then (once no earlier host shares its
 * identity) the idempotent prepare step: swap, kernel modules, sysctls,
 * containerd 2.x, pinned kubelet/kubeadm/kubectl, and the images init or
 * join will need.
 */
export class Host extends pulumi.ComponentResource {
    public readonly scripts: command.remote.Command;
    public readonly preflight: command.remote.Command;
    public readonly prepare: command.remote.Command;
    /** The `offline` archives copied to this host (none without `offline`). */
    public readonly copies: command.remote.CopyToRemote[];
    /** Facts this host's preflight reported. */
    public readonly reportedFacts: pulumi.Output<HostFacts>;
    /** The same facts, released only after the cross-host checks passed. */
    public readonly facts: pulumi.Output<HostFacts>;

    constructor(name: string, args: HostArgs, opts?: pulumi.ComponentResourceOptions) {
        super("kubeadm:index:Host", name, {}, opts);
        const { spec, host, connection } = args;
        const target = targetOf(host);

        this.scripts = scriptsStep(`${name}-scripts`, { connection, target, archive: library().archive }, {
            parent: this,
            dependsOn: args.ready.apply(() => []),
        });

        this.preflight = step(`${name}-preflight`, {
            connection, target, ...preflightCall(spec, host),
        }, { parent: this, dependsOn: [this.scripts] });

        this.reportedFacts = this.preflight.stdout.apply((out) => parseFacts(host.name, out));
        this.facts = checkAgainstEarlier(this.reportedFacts, args.earlierFacts);

        // The offline archives, in parallel with preflight (SFTP as the SSH user, into its home).
        this.copies = offlineCopies(spec).map((c) => new command.remote.CopyToRemote(`${name}-${c.step}`, {
            connection, source: new pulumi.asset.FileAsset(c.file.path), remotePath: c.remotePath,
        }, { parent: this, dependsOn: [this.scripts] }));

        // Waits for preflight, the cross-host identity checks and the copies;
        // the text does not depend on them, so it is known at preview.
        this.prepare = step(`${name}-prepare`, {
            connection, target, ...prepareCall(spec, host),
        }, { parent: this, dependsOn: this.facts.apply(() => [this.preflight, ...this.copies]) });

        this.registerOutputs({ facts: this.facts });
    }
}

/** TCP ports preflight checks on a host: the API server's (control planes) and kubeadm's list. */
export function preflightPorts(spec: ClusterSpec, host: HostSpec): string[] {
    const ports = isControlPlane(host) ? [spec.apiServer.port, ...CONTROL_PLANE_PORTS] : WORKER_PORTS;
    return [...new Set(ports)].sort((a, b) => a - b).map(String);
}

/** The NodePort range kube-proxy serves on every node that runs workloads (kube-apiserver's --service-node-port-range default). */
export const NODE_PORT_RANGE = "30000-32767/tcp";

/**
 * What prepare opens where firewalld runs (kubernetes.io "Ports and
 * Protocols"): a control plane's API server, etcd, kubelet, kube-proxy,
 * controller-manager and scheduler ports, a worker's kubelet, kube-proxy and
 * NodePort ports (also on a control plane that is a worker), every node's
 * CNI ports; the ingress controller's HTTP and HTTPS ports on the nodes it
 * runs on (`addons.ingress.nodes`: the host ports with hostNetwork, its two
 * NodePorts otherwise); and the pod and service networks as trusted sources,
 * or firewalld drops pod-to-pod and pod-to-service traffic between nodes (the
 * same advice as k3s's "Requirements: firewalld").
 */
export function firewallOpenings(spec: ClusterSpec, host: HostSpec): { ports: string[]; sources: string[] } {
    const ports: string[] = [...preflightPorts(spec, host).map((p) => `${p}/tcp`)];
    if (isWorker(host)) ports.push(NODE_PORT_RANGE);
    ports.push(...CNI_PORTS[spec.network.cni]);
    const ingress = spec.addons.ingress;
    if (ingress.enabled && ingress.nodes.includes(host.name)) ports.push(`${ingress.httpPort}/tcp`, `${ingress.httpsPort}/tcp`);
    return { ports: [...new Set(ports)], sources: [spec.network.podSubnet, spec.network.serviceSubnet] };
}

/**
 * The kubelet's default hard eviction thresholds for its filesystems
 * (k8s.io/kubernetes v1.36.4 pkg/kubelet/eviction/defaults_linux.go
 * DefaultEvictionHard). cmd/kubelet/app/server.go uses them when evictionHard
 * is unset (or empty), and fills in the signals a configured one leaves out only
 * with mergeDefaultEvictionSettings: true. Below them the node is DiskPressure and
 * the kubelet refuses every pod that is not critical, while it stays Ready.
 */
const DISK_SIGNALS: readonly { dir: string; signal: string; default: string }[] = [
    { dir: "/var/lib/containerd", signal: "imagefs.available", default: "15%" },
    { dir: "/var/lib/kubelet", signal: "nodefs.available", default: "10%" },
];

const QUANTITY_SUFFIX: Readonly<Record<string, number>> = {
    "": 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
    Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};

/** An eviction threshold value ("15%", "2Gi", "500M", "1073741824") as a percentage or bytes; undefined when it is neither (the kubelet judges it). */
export function evictionThreshold(value: string): { percent: number } | { bytes: number } | undefined {
    const pct = /^(\d+(?:\.\d+)?)%$/.exec(value.trim());
    if (pct) return { percent: Number(pct[1]) };
    const q = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/.exec(value.trim());
    if (q) return { bytes: Math.ceil(Number(q[1]) * QUANTITY_SUFFIX[q[2] ?? ""]) };
    return undefined;
}

/** preflight's DISK items: `dir<TAB>signal<TAB>value<TAB>percent<TAB>bytes`, from kubeadm.kubelet.evictionHard or the kubelet's defaults. */
export function diskChecks(spec: ClusterSpec): string[] {
    const kubelet = spec.kubeadm.kubeletConfiguration;
    const configured = kubelet.evictionHard as Record<string, unknown> | undefined;
    const defaults = !configured || Object.keys(configured).length === 0 || kubelet.mergeDefaultEvictionSettings === true;
    return DISK_SIGNALS.flatMap((d) => {
        const value = typeof configured?.[d.signal] === "string" ? (configured[d.signal] as string) : defaults ? d.default : undefined;
        if (value === undefined) return [];
        const t = evictionThreshold(value);
        // (0% turns the threshold off; the kubelet ignores 100% and more)
        if (!t || ("percent" in t && (t.percent <= 0 || t.percent >= 100))) return [];
        return [[d.dir, d.signal, value, "percent" in t ? String(t.percent) : "", "bytes" in t ? String(t.bytes) : ""].join("\t")];
    });
}

/** The preflight script call for one host. */
export function preflightCall(spec: ClusterSpec, host: HostSpec): ScriptCall {
    const cp = isControlPlane(host);
    return {
        script: "preflight",
        what: `read-only checks of ${host.name} as a ${cp ? "control plane" : "worker"} for Kubernetes ${spec.kubernetesVersion}; changes nothing`,
        vars: {
            NODE_NAME: host.name,
            IS_CONTROL_PLANE: cp,
            KUBERNETES_MINOR: minorOf(spec.kubernetesVersion),
            MIN_CPUS: CONTROL_PLANE_MIN_CPUS,
            MIN_MEMORY_MB: CONTROL_PLANE_MIN_MEMORY_MB,
            PORTS: preflightPorts(spec, host),
            IGNORE: spec.preflight.ignore,
            SOURCES: sourceLines(spec),
            DISK: diskChecks(spec),
        },
    };
}

/** The pause image kubeadm of this version expects, under the configured image repository. */
export function pauseImage(spec: ClusterSpec): string {
    return `${spec.kubeadm.imageRepository}/pause:${PAUSE_TAG[minorOf(spec.kubernetesVersion) as KubernetesMinor]}`;
}

/** The prepare script call for one host (the same text for every OS: the script picks apt or dnf). */
export function prepareCall(spec: ClusterSpec, host: HostSpec): ScriptCall {
    const copies = offlineCopies(spec);
    const offlinePackages = copies.find((c) => c.step === "offline-packages");
    // offline.packages is a local repository on the host itself.
    const local = offlinePackages ? { apt: `file://${OFFLINE_REPO_DIR} ./`, rpm: `file://${OFFLINE_REPO_DIR}/` } : spec.packages.localRepository;
    const pause = pauseImage(spec);
    const registries = spec.containerd.registries.map(renderRegistryHosts);
    const firewall = firewallOpenings(spec, host);
    const proxy = spec.proxy;
    return {
        script: "prepare",
        what: `swap off, modules, sysctls, containerd ${CONTAINERD_VERSION}, kubelet/kubeadm/kubectl ${spec.kubernetesVersion}, ` +
            `${isControlPlane(host) ? "control-plane" : "node"} images${offlinePackages ? " (packages from offline.packages)" : local ? " (from packages.localRepository)" : ""}` +
            `${spec.offline?.images.length ? " (images from offline.images)" : ""}${proxy ? " (through proxy)" : ""}`,
        vars: {
            LOCAL_APT_SOURCE: local?.apt ?? "",
            LOCAL_RPM_BASEURL: local?.rpm ?? "",
            LOCAL_REPO_KEY_URL: spec.packages.localRepository?.keyUrl ?? "",
            KUBERNETES_VERSION: spec.kubernetesVersion,
            KUBERNETES_MINOR: minorOf(spec.kubernetesVersion),
            KUBERNETES_REPO_BASE: kubernetesRepoBase(spec),
            DOCKER_REPO_BASE: dockerRepoBase(spec),
            CONTAINERD_VERSION,
            CONTAINERD_CONFIG: renderContainerdConfig({ pauseImage: pause, restrictOomScoreAdj: spec.containerd.restrictOomScoreAdj }),
            REGISTRY_DIRS: registries.map((r) => r.dir),
            REGISTRY_HOSTS_TOML: registries.map((r) => r.hostsToml),
            REGISTRY_CAS: registries.map((r) => r.ca),
            FIREWALL_PORTS: firewall.ports,
            FIREWALL_SOURCES: firewall.sources,
            CRICTL_CONFIG: renderCrictlConfig(),
            PAUSE_IMAGE: pause,
            IMAGE_REPOSITORY: spec.kubeadm.imageRepository,
            IS_CONTROL_PLANE: isControlPlane(host),
            PROXY_HTTP: proxy?.http ?? "",
            PROXY_HTTPS: proxy?.https ?? "",
            NO_PROXY_LIST: proxy ? noProxyList(spec).join(",") : "",
            APT_PROXY_CONF: proxy ? renderAptProxyConf(proxy) : "",
            CONTAINERD_PROXY_DROPIN: proxy ? renderContainerdProxyDropIn(proxy, noProxyList(spec)) : "",
            SSH_USER: host.user,
            OFFLINE_REPO_DIR,
            OFFLINE_PACKAGES: offlinePackages ? offlineLine(offlinePackages) : "",
            OFFLINE_IMAGES: copies.filter((c) => c.step.startsWith("offline-image-")).map(offlineLine),
        },
    };
}
