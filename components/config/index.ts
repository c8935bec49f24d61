/**
 * Stack configuration -> validated `ClusterSpec`.
 *
 * `parseClusterConfig` is the only place that knows the shape of the stack
 * configuration users write. It checks everything it can before a single SSH
 * connection is made, collects EVERY problem (never stopping at the first),
 * and reports each one with its config path and a message that says what is
 * wrong and how to fix it. The rest of the program reads only the returned
 * model (see `model.ts`).
 *
 * Each section has its own file here, all reporting into one `Problems`
 * list (problems.ts). Pure apart from checking that a local chart path exists: no Pulumi calls, no other I/O, no dependencies beyond the
 * model and version pins. The small IPv4/IPv6 address and CIDR helpers at the
 * bottom are exported for the components that render addresses.
 */
import { ApiServerSpec, ClusterSpec, CniChoice, HostSpec, KubeadmSpec, NetworkSpec, ProxyMode, Role } from "../model";
import { IpAddress, Cidr, formatIp, formatCidr, cidrContains } from "../net";
import { Problems, child, item } from "./problems";
import { DEFAULT_SSH_USER, DEFAULT_SSH_PORT, parseSsh, privateKeyProblem } from "./ssh";
import { parseHosts } from "./hosts";
import { parseKubernetesVersion } from "./version";
import { DEFAULT_POD_SUBNET, DEFAULT_SERVICE_SUBNET, DEFAULT_DNS_DOMAIN, DEFAULT_CNI, parseNetwork, checkPodSubnetSize } from "./network";
import { DEFAULT_API_SERVER_PORT, parseApiServer } from "./apiServer";
import { DEFAULT_PROXY_MODE, parseKubeadm } from "./kubeadm";
import { parsePreflight } from "./preflight";
import { parsePackages } from "./packages";
import { parseCharts } from "./charts";
import { ConfigError } from "./problems";

export { ConfigError, ConfigProblem, editDistance, closest } from "./problems";
export { isDnsLabel, dnsNameProblem, isDnsName } from "./addresses";
export { DEFAULT_SSH_USER, DEFAULT_SSH_PORT, privateKeyProblem };
export { DEFAULT_POD_SUBNET, DEFAULT_SERVICE_SUBNET, DEFAULT_DNS_DOMAIN, DEFAULT_CNI, DEFAULT_API_SERVER_PORT, DEFAULT_PROXY_MODE };

/** The raw stack config values exactly as `pulumi.Config#getObject`/`get` return them (unknown types: users write YAML). */
export interface RawConfig {
    hosts?: unknown;
    ssh?: unknown;
    kubernetesVersion?: unknown;
    network?: unknown;
    apiServer?: unknown;
    kubeadm?: unknown;
    preflight?: unknown;
    packages?: unknown;
    charts?: unknown;
}

// ---------------------------------------------------------------------------
// Entry point
// ---------------------------------------------------------------------------

/**
 * Validate and normalise the stack config; throws `ConfigError` listing every
 * problem. `projectName` becomes `spec.clusterName`. The SSH private key is
 * validated here but is not part of the returned spec (it is a secret).
 */
export function parseClusterConfig(raw: RawConfig, projectName: string): ClusterSpec {
    const problems = new Problems();

    const hosts = parseHosts(raw.hosts, problems);
    const ssh = parseSsh(raw.ssh, problems);
    const kubernetesVersion = parseKubernetesVersion(raw.kubernetesVersion, problems);
    const network = parseNetwork(raw.network, problems);
    const apiServer = parseApiServer(raw.apiServer, problems);
    const kubeadm = parseKubeadm(raw.kubeadm, problems);
    const preflight = parsePreflight(raw.preflight, problems);
    const packages = parsePackages(raw.packages, problems);
    const charts = parseCharts(raw.charts, problems);

    // Cross-section checks.
    if (network.podSubnet && !problems.hasUnder("kubeadm.controllerManagerExtraArgs")) {
        checkPodSubnetSize(network.podSubnet, kubeadm.controllerManagerExtraArgs ?? [], hosts.length, problems);
    }
    const subnets: [string, Cidr | undefined][] = [
        ["pod subnet", network.podSubnet],
        ["service subnet", network.serviceSubnet],
    ];
    const checkInCluster = (ip: IpAddress, path: string, what: string, fixSetting: string): void => {
        const family = network.podSubnet?.family ?? network.serviceSubnet?.family;
        if (family !== undefined && ip.family !== family) {
            problems.add(
                path,
                `${JSON.stringify(formatIp(ip))} is IPv${ip.family} but the cluster network is IPv${family}: ` +
                    `${fixSetting} (dual-stack is not supported)`,
            );
            return;
        }
        for (const [label, cidr] of subnets) {
            if (cidr && cidrContains(cidr, ip)) {
                const setting = label === "pod subnet" ? "network.podSubnet" : "network.serviceSubnet";
                problems.add(
                    path,
                    `${JSON.stringify(formatIp(ip))} is inside the ${label} ${formatCidr(cidr)}, so ${what} would collide with cluster ` +
                        `addresses: change ${setting} to a range your hosts do not use`,
                );
            }
        }
    };
    for (const host of hosts) {
        const path = item("hosts", host.index);
        if (host.internalIp) {
            checkInCluster(host.internalIp, child(path, "internalAddress"), "the node", "give an internalAddress of the same family as the pod and service subnets");
        } else if (host.addressIp) {
            checkInCluster(host.addressIp, child(path, "address"), "the node", "set internalAddress to an address of the same family as the pod and service subnets");
        }
    }
    if (apiServer.addressIp) {
        checkInCluster(apiServer.addressIp, "apiServer.address", "the API endpoint", "use an address of the same family as the pod and service subnets");
    }

    if (problems.count > 0) throw new ConfigError(problems.sorted());

    // No problems: every field below was set by the parsers (defaults included).
    const hostSpecs: HostSpec[] = hosts.map((h) => {
        const spec: HostSpec = {
            name: h.name as string,
            address: h.address as string,
            roles: h.roles as Role[],
            user: h.user ?? ssh.user,
            port: h.port ?? ssh.port,
        };
        if (h.internalAddress !== undefined) spec.internalAddress = h.internalAddress;
        return spec;
    });
    const firstControlPlane = hostSpecs.find((h) => h.roles.includes("control-plane")) as HostSpec;
    const networkSpec: NetworkSpec = {
        podSubnet: formatCidr(network.podSubnet as Cidr),
        serviceSubnet: formatCidr(network.serviceSubnet as Cidr),
        dnsDomain: network.dnsDomain as string,
        cni: network.cni as CniChoice,
    };
    const apiServerSpec: ApiServerSpec = {
        address: apiServer.address ?? firstControlPlane.address,
        port: apiServer.port ?? DEFAULT_API_SERVER_PORT,
        extraSans: apiServer.extraSans ?? [],
        explicitAddress: apiServer.address !== undefined,
    };
    const kubeadmSpec: KubeadmSpec = {
        imageRepository: kubeadm.imageRepository as string,
        apiServerExtraArgs: kubeadm.apiServerExtraArgs ?? [],
        controllerManagerExtraArgs: kubeadm.controllerManagerExtraArgs ?? [],
        schedulerExtraArgs: kubeadm.schedulerExtraArgs ?? [],
        kubeletExtraArgs: kubeadm.kubeletExtraArgs ?? [],
        proxyMode: kubeadm.proxyMode as ProxyMode,
        kubeletConfiguration: kubeadm.kubeletConfiguration ?? {},
    };
    return {
        clusterName: projectName,
        hosts: hostSpecs,
        kubernetesVersion,
        network: networkSpec,
        apiServer: apiServerSpec,
        kubeadm: kubeadmSpec,
        preflight,
        packages,
        charts,
    };
}

/** Re-exported for callers that validate addresses the same way. */
export {
    IpFamily, IpAddress, Cidr, parseIPv4, parseIPv6, parseIp, isIp, parseCidr, formatIp, formatCidr, hasHostBits, cidrNetwork, cidrContains, cidrsOverlap,
} from "../net";

