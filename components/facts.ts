/**
 * Host facts reported by the preflight step, and the checks that need every
 * host's facts at once (duplicate product_uuid or MAC address).
 */
import * as pulumi from "@pulumi/pulumi";
import { OS_FAMILIES, OsFamily } from "./model";

/** What preflight prints on stdout, as one JSON line. */
export interface HostFacts {
    node: string;
    os: { id: string; versionId: string; family: OsFamily };
    kernel: string;
    cgroup: string;
    cpus: number;
    memoryMb: number;
    /** Lowercased `/sys/class/dmi/id/product_uuid`, or "" where the host has none (containers). */
    productUuid: string;
    macs: string[];
    swapOn: boolean;
    containerd: string;
    alreadyJoined: boolean;
}

/** Parse and check preflight's stdout; a wrong shape is a bug in the script, reported with the text. */
export function parseFacts(host: string, stdout: string): HostFacts {
    let value: unknown;
    try {
        value = JSON.parse(stdout.trim());
    } catch {
        throw new Error(`preflight on host ${host} printed something that is not JSON facts: ${JSON.stringify(stdout.slice(0, 200))}`);
    }
    const f = value as HostFacts;
    if (!f || typeof f !== "object" || !f.os || !OS_FAMILIES.includes(f.os.family) || !Array.isArray(f.macs)) {
        throw new Error(`preflight on host ${host} printed facts without a supported os.family or macs: ${stdout.trim()}`);
    }
    return f;
}

/** A problem found by comparing hosts. */
export interface FleetProblem {
    nodes: string[];
    message: string;
}

/**
 * Problems that only show when hosts are compared: kubeadm requires a unique
 * product_uuid and MAC address per node (cloned VMs often share them).
 * Returns every problem with the hosts involved.
 */
export function fleetProblems(facts: HostFacts[]): FleetProblem[] {
    const problems: FleetProblem[] = [];
    const byUuid = new Map<string, string[]>();
    const byMac = new Map<string, string[]>();
    for (const f of facts) {
        if (f.productUuid) byUuid.set(f.productUuid, [...(byUuid.get(f.productUuid) ?? []), f.node]);
        for (const mac of new Set(f.macs)) byMac.set(mac, [...(byMac.get(mac) ?? []), f.node]);
    }
    for (const [uuid, nodes] of byUuid) {
        if (nodes.length > 1) {
            problems.push({ nodes, message: `hosts ${nodes.join(", ")} share product_uuid ${uuid}: kubeadm needs it unique per node. ` +
                "Fix: give each VM its own UUID (clone with a new SMBIOS UUID), or remove the duplicate host." });
        }
    }
    for (const [mac, nodes] of byMac) {
        if (nodes.length > 1) {
            problems.push({ nodes, message: `hosts ${nodes.join(", ")} share MAC address ${mac}: kubeadm needs it unique per node. ` +
                "Fix: regenerate the MAC of the cloned VM's network interface." });
        }
    }
    return problems;
}

/**
 * A host's facts, released only if no host listed before it in the stack
 * config shares its product_uuid or MAC address; otherwise an error listing
 * every such problem. Comparing with *earlier* hosts only keeps each host's
 * inputs independent of hosts added after it, so adding a host at the end of
 * the list previews as creates for that host only; a duplicate pair is still
 * caught (at the later host of the pair) before anything is installed on it.
 */
export function checkAgainstEarlier(own: pulumi.Output<HostFacts>, earlier: pulumi.Output<HostFacts>[]): pulumi.Output<HostFacts> {
    return pulumi.all([own, ...earlier]).apply(([mine, ...before]) => {
        const problems = fleetProblems([...before, mine]).filter((p) => p.nodes.includes(mine.node));
        if (problems.length > 0) {
            throw new Error(`preflight failed on host ${mine.node}:\n${problems.map((p) => `  - ${p.message}`).join("\n")}`);
        }
        return mine;
    });
}
