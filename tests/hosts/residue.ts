/**
 * What a node leaves on a host, as one list of `kind what` lines: the paths
 * kubeadm and the CNIs write, the network interfaces and the iptables /
 * nftables rules they make, the kubelet's mounts, and CNI plugin binaries
 * that no package owns (a CNI's init container copies its plugin into
 * /opt/cni/bin). Teardown must leave it empty. The same check serves the
 * stand-in hosts (tests/hosts) and the real cluster (tests/cluster).
 */
import { Sandbox, SandboxHost } from "./sandbox";

export const RESIDUE_CHECK = [
    "for p in /etc/kubernetes /var/lib/kubelet /var/lib/etcd /var/lib/cni /run/flannel; do [ -e $p ] && echo path $p; done",
    // containerd's CRI plugin makes an empty /etc/cni/net.d whenever it starts (it watches it): only a CNI config in it is residue
    "[ -n \"$(ls -A /etc/cni/net.d 2>/dev/null)\" ] && echo path /etc/cni/net.d: $(ls -A /etc/cni/net.d)",
    "for i in cni0 flannel.1 kube-ipvs0; do ip link show $i >/dev/null 2>&1 && echo link $i; done",
    "iptables-save 2>/dev/null | grep -E '^(:|-A )(KUBE-|CNI-|FLANNEL)' | sed 's/^/iptables /'",
    "nft list tables 2>/dev/null | grep -E 'kube-proxy|cilium' | sed 's/^/nft /'",
    "grep ' /var/lib/kubelet' /proc/mounts | sed 's/^/mount /'",
    "for f in /opt/cni/bin/flannel /opt/cni/bin/calico /opt/cni/bin/calico-ipam /opt/cni/bin/cilium-cni; do [ -e $f ] && ! dpkg -S $f >/dev/null 2>&1 && echo cni-binary $f; done",
    "true",
].join("; ");

export async function residueOf(sb: Sandbox, h: SandboxHost): Promise<string[]> {
    const r = await sb.ssh(h, "root", RESIDUE_CHECK);
    if (r.code !== 0) throw new Error(`residue check on ${h.name}: exit ${r.code}\n${r.stderr}`);
    return r.stdout.trim().split("\n").filter((l) => l);
}
