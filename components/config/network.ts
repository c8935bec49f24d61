/** The `network` section, and the pod subnet's size against the node count. */
import { CniChoice, CNI_CHOICES, ExtraArg } from "../model";
import { IpFamily, Cidr, parseIp, parseCidr, formatIp, formatCidr, hasHostBits, cidrNetwork, cidrsOverlap } from "../net";
import { Obj, Problems, isObject, isAbsent, show, describe, quoteList, closest, checkKeys } from "./problems";
import { dnsNameProblem } from "./addresses";

/** Pod network: flannel's default `Network` (kube-flannel.yml `net-conf.json`), which the other CNIs accept too. */
export const DEFAULT_POD_SUBNET = "10.244.0.0/16";
/** Service network: kubeadm's default `networking.serviceSubnet` (`DefaultServicesSubnet` in kubeadm's v1beta4 defaults). */
export const DEFAULT_SERVICE_SUBNET = "10.96.0.0/12";
/** Cluster DNS domain: kubeadm's default `networking.dnsDomain` (`DefaultServiceDNSDomain`). */
export const DEFAULT_DNS_DOMAIN = "cluster.local";
/** Pod network add-on: flannel, the simplest one; its default network is `DEFAULT_POD_SUBNET`. */
export const DEFAULT_CNI: CniChoice = "flannel";

/**
 * kube-controller-manager's default per-node pod CIDR sizes (`--node-cidr-mask-size-ipv4/-ipv6`,
 * 24 and 64), which kubeadm also assumes when it validates `networking.podSubnet`.
 */
const DEFAULT_NODE_CIDR_MASK = { 4: 24, 6: 64 } as const;
/** kubeadm `PodSubnetNodeMaskMaxDiff`: the node mask may be at most 16 bits longer than the pod subnet's. */
const POD_SUBNET_NODE_MASK_MAX_DIFF = 16;
/** kube-apiserver / kubeadm `MaximumBitsForServiceSubnet`: at most 2^20 service addresses. */
const MAX_SERVICE_SUBNET_BITS = 20;
/** The cluster DNS Service takes the 10th address of the service subnet, so it needs at least 16 addresses (4 host bits). */
const MIN_SERVICE_SUBNET_BITS = 4;

const NETWORK_KEYS = ["podSubnet", "serviceSubnet", "dnsDomain", "cni"] as const;
const NETWORK_ALIASES: Record<string, string> = {
    podCidr: "podSubnet",
    podCIDR: "podSubnet",
    clusterCidr: "podSubnet",
    clusterCIDR: "podSubnet",
    serviceCidr: "serviceSubnet",
    serviceCIDR: "serviceSubnet",
    plugin: "cni",
};

export interface ParsedNetwork {
    podSubnet?: Cidr;
    serviceSubnet?: Cidr;
    dnsDomain?: string;
    cni?: CniChoice;
}

function parseSubnet(raw: unknown, path: string, fallback: string, problems: Problems): Cidr | undefined {
    if (isAbsent(raw)) return parseCidr(fallback);
    const example = `e.g. ${JSON.stringify(fallback)}`;
    if (typeof raw !== "string") {
        problems.add(path, `must be a CIDR string, got ${describe(raw)} (${example})`);
        return undefined;
    }
    const s = raw.trim();
    if (s.includes(",")) {
        problems.add(path, `${show(raw)} lists several subnets, but dual-stack is not supported: give one CIDR (${example})`);
        return undefined;
    }
    const cidr = parseCidr(s);
    if (!cidr) {
        const ip = parseIp(s);
        problems.add(
            path,
            ip
                ? `${show(raw)} is an address, not a subnet: add a prefix length (e.g. ${JSON.stringify(`${formatIp(ip)}/${ip.family === 4 ? 16 : 64}`)})`
                : `${show(raw)} is not a valid CIDR: write an IPv4 or IPv6 network address and a prefix length (${example})`,
        );
        return undefined;
    }
    if (hasHostBits(cidr)) {
        const network = formatCidr(cidrNetwork(cidr));
        problems.add(path, `${show(raw)} has host bits set: use the network address ${JSON.stringify(network)}`);
        return undefined;
    }
    return cidr;
}

export function parseNetwork(raw: unknown, problems: Problems): ParsedNetwork {
    const result: ParsedNetwork = {};
    let obj: Obj = {};
    if (!isAbsent(raw)) {
        if (!isObject(raw)) {
            problems.add("network", `must be an object with podSubnet, serviceSubnet, dnsDomain and cni, got ${describe(raw)}`);
            return result;
        }
        obj = raw;
        checkKeys(obj, NETWORK_KEYS, "network", problems, NETWORK_ALIASES);
    }

    const pod = parseSubnet(obj["podSubnet"], "network.podSubnet", DEFAULT_POD_SUBNET, problems);
    if (pod) result.podSubnet = pod;
    const service = parseSubnet(obj["serviceSubnet"], "network.serviceSubnet", DEFAULT_SERVICE_SUBNET, problems);
    if (service) {
        const hostBits = (service.family === 4 ? 32 : 128) - service.prefix;
        const maxPrefix = (service.family === 4 ? 32 : 128) - MAX_SERVICE_SUBNET_BITS;
        const minPrefix = (service.family === 4 ? 32 : 128) - MIN_SERVICE_SUBNET_BITS;
        const example = service.family === 4 ? DEFAULT_SERVICE_SUBNET : "fd00:10:96::/108";
        if (hostBits > MAX_SERVICE_SUBNET_BITS) {
            problems.add(
                "network.serviceSubnet",
                `${show(obj["serviceSubnet"])} is too large: kube-apiserver refuses more than 2^20 service addresses, so an ` +
                    `IPv${service.family} service subnet needs a prefix of /${maxPrefix} or longer (e.g. ${JSON.stringify(example)})`,
            );
        } else if (hostBits < MIN_SERVICE_SUBNET_BITS) {
            problems.add(
                "network.serviceSubnet",
                `${show(obj["serviceSubnet"])} is too small: the cluster DNS Service takes the 10th address, so use a prefix ` +
                    `of /${minPrefix} or shorter (e.g. ${JSON.stringify(example)})`,
            );
        } else {
            result.serviceSubnet = service;
        }
    }
    if (pod && service && pod.family !== service.family) {
        problems.add(
            "network.serviceSubnet",
            `${show(formatCidr(service))} is IPv${service.family} but the pod subnet ${JSON.stringify(formatCidr(pod))} is IPv${pod.family}: ` +
                `use the same IP family for both (dual-stack is not supported)`,
        );
        delete result.serviceSubnet;
    } else if (pod && service && cidrsOverlap(pod, service)) {
        problems.add(
            "network.serviceSubnet",
            `${show(formatCidr(service))} overlaps the pod subnet ${JSON.stringify(formatCidr(pod))}: choose ranges that do not overlap ` +
                `(the defaults are ${DEFAULT_POD_SUBNET} for pods and ${DEFAULT_SERVICE_SUBNET} for services)`,
        );
    }

    const dns = obj["dnsDomain"];
    if (isAbsent(dns)) {
        result.dnsDomain = DEFAULT_DNS_DOMAIN;
    } else if (typeof dns !== "string") {
        problems.add("network.dnsDomain", `must be a DNS domain string, got ${describe(dns)} (e.g. "${DEFAULT_DNS_DOMAIN}")`);
    } else {
        const why = dnsNameProblem(dns);
        if (why) {
            problems.add(
                "network.dnsDomain",
                `${show(dns)} is not a valid DNS domain (${why}): use lowercase labels of letters, digits and '-' separated by dots (e.g. "${DEFAULT_DNS_DOMAIN}")`,
            );
        } else {
            result.dnsDomain = dns;
        }
    }

    const cni = obj["cni"];
    if (isAbsent(cni)) {
        result.cni = DEFAULT_CNI;
    } else if (typeof cni === "string" && (CNI_CHOICES as readonly string[]).includes(cni)) {
        result.cni = cni as CniChoice;
    } else {
        const guess = typeof cni === "string" ? closest(cni, CNI_CHOICES) : undefined;
        problems.add(
            "network.cni",
            `${show(cni)} is not a supported CNI: use one of ${quoteList(CNI_CHOICES)} ("none": you install the pod network yourself)${guess ? ` (did you mean ${JSON.stringify(guess)}?)` : ""}`,
        );
    }
    return result;
}

/** Per-node pod CIDR size: kube-controller-manager's flag when the user set it, else its default. */
function nodeCidrMask(family: IpFamily, controllerManagerArgs: readonly ExtraArg[]): number | undefined {
    const names = family === 4 ? ["node-cidr-mask-size-ipv4", "node-cidr-mask-size"] : ["node-cidr-mask-size-ipv6"];
    for (const name of names) {
        const arg = [...controllerManagerArgs].reverse().find((a) => a.name === name);
        if (arg && /^[0-9]+$/.test(arg.value)) return Number(arg.value);
    }
    return DEFAULT_NODE_CIDR_MASK[family];
}

/** The same network with the longest prefix that holds `hosts` per-node ranges (a suggestion that fits). */
function fittingPodSubnet(pod: Cidr, nodeMask: number, hosts: number): string {
    const prefix = Math.max(0, nodeMask - Math.ceil(Math.log2(Math.max(hosts, 2))));
    return formatCidr(cidrNetwork({ ...pod, prefix }));
}

/** Pod subnet vs per-node CIDR size and node count (kubeadm's ValidatePodSubnetNodeMask, plus capacity). */
export function checkPodSubnetSize(
    pod: Cidr,
    controllerManagerArgs: readonly ExtraArg[],
    hostCount: number,
    problems: Problems,
): void {
    const allocate = [...controllerManagerArgs].reverse().find((a) => a.name === "allocate-node-cidrs");
    if (allocate?.value === "false") return;
    const nodeMask = nodeCidrMask(pod.family, controllerManagerArgs);
    if (nodeMask === undefined) return;
    const text = JSON.stringify(formatCidr(pod));
    const example = pod.family === 4 ? DEFAULT_POD_SUBNET : "fd00:10:244::/56";
    if (pod.prefix > nodeMask) {
        problems.add(
            "network.podSubnet",
            `${text} is smaller than one node's pod range: each node takes a /${nodeMask} of the pod subnet, ` +
                `so use a prefix of /${nodeMask} or shorter (e.g. ${JSON.stringify(example)})`,
        );
    } else if (nodeMask - pod.prefix > POD_SUBNET_NODE_MASK_MAX_DIFF) {
        problems.add(
            "network.podSubnet",
            `${text} is too large: kubeadm allows at most ${POD_SUBNET_NODE_MASK_MAX_DIFF} bits between the pod subnet and ` +
                `the per-node /${nodeMask}, so use a prefix of /${nodeMask - POD_SUBNET_NODE_MASK_MAX_DIFF} or longer (e.g. ${JSON.stringify(example)})`,
        );
    } else if (nodeMask - pod.prefix < 31 && 2 ** (nodeMask - pod.prefix) < hostCount) {
        problems.add(
            "network.podSubnet",
            `${text} has room for ${2 ** (nodeMask - pod.prefix)} node(s) (a /${nodeMask} each) but ${hostCount} hosts are configured: ` +
                `use a shorter prefix, e.g. ${JSON.stringify(fittingPodSubnet(pod, nodeMask, hostCount))}`,
        );
    }
}

