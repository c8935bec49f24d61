/** The structured files: kubeadm v1beta4 documents and the containerd config. */
import * as TOML from "smol-toml";
import * as YAML from "yaml";
import { parseClusterConfig } from "../components/config";
import { renderContainerdConfig, renderCrictlConfig, renderRegistryHosts } from "../components/containerd";
import { apiServerCertSans, discoverySection, hostPort, renderInitConfig, renderJoinConfig } from "../components/kubeadm/config";
import { rawConfig } from "./harness";

const spec = (o: Parameters<typeof rawConfig>[0] = {}) => parseClusterConfig(rawConfig(o), "demo");

describe("kubeadm config", () => {
    test("init config: four documents, v1beta4 extraArgs as {name, value} lists", () => {
        const s = spec({ kubeadm: { apiServerExtraArgs: { "audit-log-maxage": "30" }, kubeProxyMode: "nftables" } });
        const docs = YAML.parseAllDocuments(renderInitConfig(s, s.hosts[0])).map((d) => d.toJS());
        expect(docs.map((d) => d.kind)).toEqual(["InitConfiguration", "ClusterConfiguration", "KubeletConfiguration", "KubeProxyConfiguration"]);
        const [init, cluster, kubelet, proxy] = docs;
        expect(init.localAPIEndpoint).toEqual({ advertiseAddress: "10.0.0.10", bindPort: 6443 });
        expect(init.nodeRegistration.kubeletExtraArgs).toEqual([{ name: "node-ip", value: "10.0.0.10" }]);
        expect(init.nodeRegistration.criSocket).toBe("unix:///var/run/containerd/containerd.sock");
        expect(cluster.apiServer.extraArgs).toEqual([{ name: "audit-log-maxage", value: "30" }]);
        expect(cluster.clusterName).toBe("demo");
        expect(kubelet.cgroupDriver).toBe("systemd");
        expect(proxy.mode).toBe("nftables");
    });

    test("user kubelet fields are merged but cannot override the cgroup driver or kind", () => {
        const s = spec({ kubeadm: { kubelet: { maxPods: 150 } } });
        const kubelet = YAML.parseAllDocuments(renderInitConfig(s, s.hosts[0]))[2].toJS();
        expect(kubelet).toMatchObject({ maxPods: 150, cgroupDriver: "systemd", kind: "KubeletConfiguration" });
    });

    test("join config: no discovery (the join script writes it); worker has no controlPlane section, control plane has one", () => {
        const s = spec();
        const worker = YAML.parse(renderJoinConfig(s, s.hosts[1], false));
        expect(worker.discovery).toBeUndefined();
        expect(worker.controlPlane).toBeUndefined();
        expect(worker.nodeRegistration.name).toBe("worker-1");
        const cp = YAML.parse(renderJoinConfig(s, s.hosts[1], true));
        expect(cp.controlPlane.localAPIEndpoint.advertiseAddress).toBe("10.0.0.11");
        const full = YAML.parse(renderJoinConfig(s, s.hosts[1], false) + discoverySection("10.0.0.10:6443", "abcdef.0123456789abcdef", "sha256:abc"));
        expect(full.discovery.bootstrapToken).toEqual({ apiServerEndpoint: "10.0.0.10:6443", token: "abcdef.0123456789abcdef", caCertHashes: ["sha256:abc"] });
    });

    test("SANs: the API address, loopback and the extra SANs; not the control planes' own names and addresses (kubeadm adds each one's)", () => {
        const s = spec({ apiServer: { address: "k8s.example.com", extraSans: ["10.9.9.9"] } });
        expect(apiServerCertSans(s)).toEqual(["10.9.9.9", "127.0.0.1", "k8s.example.com", "localhost"]);
        const three = spec({
            hosts: [1, 2, 3].map((i) => ({ name: `cp-${i}`, address: `192.0.2.${10 + i}`, roles: ["control-plane"] })),
        });
        const two = spec({
            hosts: [1, 2].map((i) => ({ name: `cp-${i}`, address: `192.0.2.${10 + i}`, roles: ["control-plane"] })),
        });
        // adding a control plane does not change the init configuration
        expect(renderInitConfig(three, three.hosts[0])).toBe(renderInitConfig(two, two.hosts[0]));
    });

    test("IPv6 endpoints are bracketed", () => {
        expect(hostPort("fd00::1", 6443)).toBe("[fd00::1]:6443");
        expect(hostPort("10.0.0.1", 6443)).toBe("10.0.0.1:6443");
    });
});

describe("containerd config", () => {
    test("version 3, systemd cgroups written explicitly, pinned sandbox image, registry hosts dir", () => {
        const parsed = TOML.parse(renderContainerdConfig({ pauseImage: "registry.k8s.io/pause:3.10.1" })) as any;
        expect(parsed.version).toBe(3);
        expect(parsed.plugins["io.containerd.cri.v1.runtime"].containerd.runtimes.runc.options.SystemdCgroup).toBe(true);
        expect(parsed.plugins["io.containerd.cri.v1.images"].pinned_images.sandbox).toBe("registry.k8s.io/pause:3.10.1");
        expect(parsed.plugins["io.containerd.cri.v1.images"].registry.config_path).toBe("/etc/containerd/certs.d");
        expect(parsed.disabled_plugins).toBeUndefined();
    });

    test("restrict_oom_score_adj only when asked for", () => {
        const on = TOML.parse(renderContainerdConfig({ pauseImage: "p:1", restrictOomScoreAdj: true })) as any;
        expect(on.plugins["io.containerd.cri.v1.runtime"].restrict_oom_score_adj).toBe(true);
        const off = TOML.parse(renderContainerdConfig({ pauseImage: "p:1" })) as any;
        expect(off.plugins["io.containerd.cri.v1.runtime"].restrict_oom_score_adj).toBeUndefined();
    });

    test("registry hosts.toml: a private registry with its CA, mirrors in order, docker.io's real server, _default", () => {
        const own = renderRegistryHosts({ registry: "10.0.0.5:5443", mirrors: [], ca: "PEM", skipVerify: false, plainHttp: false });
        expect(own.dir).toBe("10.0.0.5:5443");
        expect(own.ca).toBe("PEM");
        expect(TOML.parse(own.hostsToml)).toEqual({
            server: "https://10.0.0.5:5443",
            host: { "https://10.0.0.5:5443": { capabilities: ["pull", "resolve", "push"], ca: "/etc/containerd/certs.d/10.0.0.5:5443/ca.crt" } },
        });
        const hub = TOML.parse(renderRegistryHosts({ registry: "docker.io", mirrors: ["https://m1.example", "https://m2.example/v2/hub"], skipVerify: true, plainHttp: false }).hostsToml) as any;
        expect(hub.server).toBe("https://registry-1.docker.io");
        expect(Object.keys(hub.host)).toEqual(["https://m1.example", "https://m2.example/v2/hub"]);
        expect(hub.host["https://m2.example/v2/hub"]).toEqual({ capabilities: ["pull", "resolve"], skip_verify: true, override_path: true });
        const all = TOML.parse(renderRegistryHosts({ registry: "_default", mirrors: ["http://10.0.0.9:5000"], skipVerify: false, plainHttp: false }).hostsToml) as any;
        expect(all.server).toBeUndefined();
        expect(all.host["http://10.0.0.9:5000"].capabilities).toEqual(["pull", "resolve"]);
    });

    test("crictl points at containerd", () => {
        expect(YAML.parse(renderCrictlConfig())["runtime-endpoint"]).toBe("unix:///run/containerd/containerd.sock");
    });
});
