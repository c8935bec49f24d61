/**
 * Every source the stack config names for the hosts' downloads: package
 * repositories and mirrors, image registries and mirrors, the proxy. (The
 * upstream defaults, pkgs.k8s.io, download.docker.com and registry.k8s.io,
 * are not checked: a host that reaches them only through a route the check
 * cannot see, or not at all in a test, would fail preflight for nothing
 * configured.) Preflight checks that each answers from each host and names
 * the one that does not
 * (check `source`, see preflight.sh), so a blocked firewall or a mistyped
 * mirror shows before anything is installed, not as a timeout half-way
 * through prepare.
 */
import { ClusterSpec, OsFamily, minorOf } from "./model";
import { noProxyList, proxyFor } from "./proxy";
import { DEFAULT_IMAGE_REPOSITORY, DOCKER_REPO_BASE, KUBERNETES_REPO_BASE } from "./versions";

/** One source to check. */
export interface Source {
    /** Only hosts of this package family use it ("any": all hosts). */
    family: OsFamily | "any";
    /** What it is, in the stack config's words (the config key, or the upstream default it stands for). */
    label: string;
    /** `http(s)://` or `file://` (a path on the host). */
    url: string;
    /** The proxy the host reaches it through, "" for direct. */
    via: string;
}

/** The Kubernetes package repository base in use (a configured mirror, or pkgs.k8s.io). */
export function kubernetesRepoBase(spec: ClusterSpec): string {
    return spec.packages.kubernetesRepository ?? KUBERNETES_REPO_BASE;
}

/** The containerd.io package repository base in use (a configured mirror, or download.docker.com). */
export function dockerRepoBase(spec: ClusterSpec): string {
    return spec.packages.containerdRepository ?? DOCKER_REPO_BASE;
}

/** The sources of `spec`, de-duplicated by family and URL. */
export function sources(spec: ClusterSpec): Source[] {
    const noProxy = noProxyList(spec);
    const out: Source[] = [];
    const add = (family: Source["family"], label: string, url: string, direct = false) => {
        if (out.some((s) => (s.family === family || s.family === "any") && s.url === url)) return;
        out.push({ family, label, url, via: direct || url.startsWith("file:") ? "" : proxyFor(url, spec.proxy, noProxy) });
    };
    // The proxy itself is reached directly.
    if (spec.proxy?.http) add("any", "proxy.http", spec.proxy.http, true);
    if (spec.proxy?.https) add("any", "proxy.https", spec.proxy.https, true);
    const local = spec.packages.localRepository;
    if (local) {
        if (local.apt) add("debian", "packages.localRepository.apt", local.apt.split(" ")[0]);
        if (local.rpm) add("rhel", "packages.localRepository.rpm", local.rpm);
        if (local.keyUrl) add("any", "packages.localRepository.keyUrl", local.keyUrl);
    }
    if (spec.packages.kubernetesRepository) {
        const minor = minorOf(spec.kubernetesVersion);
        add("debian", "packages.kubernetesRepository", `${spec.packages.kubernetesRepository}/v${minor}/deb/`);
        add("rhel", "packages.kubernetesRepository", `${spec.packages.kubernetesRepository}/v${minor}/rpm/`);
    }
    if (spec.packages.containerdRepository) add("any", "packages.containerdRepository", `${spec.packages.containerdRepository}/`);
    // Registries: every mirror, and every configured registry without mirrors (a private registry with its CA).
    spec.containerd.registries.forEach((r, i) => {
        r.mirrors.forEach((m, j) => add("any", `containerd.registries[${i}].mirrors[${j}]`, m));
        if (r.mirrors.length === 0 && r.registry !== "_default") {
            add("any", `containerd.registries[${i}].registry`, `${r.plainHttp ? "http" : "https"}://${r.registry === "docker.io" ? "registry-1.docker.io" : r.registry}/v2/`);
        }
    });
    // The image repository, when it is not the default and no mirror stands in for it (containerd tries mirrors first).
    const registry = spec.kubeadm.imageRepository.split("/")[0];
    const entry = spec.containerd.registries.find((r) => r.registry === registry) ?? spec.containerd.registries.find((r) => r.registry === "_default");
    if (spec.kubeadm.imageRepository !== DEFAULT_IMAGE_REPOSITORY && !(entry && entry.mirrors.length > 0)) {
        add("any", "kubeadm.imageRepository", `${entry?.registry === registry && entry.plainHttp ? "http" : "https"}://${registry}/v2/`);
    }
    // The add-ons' image registry (addons.imageRegistry: host[:port][/path]), unless mirrors stand in for it.
    const addonRegistry = spec.addons?.imageRegistry?.split("/")[0];
    if (addonRegistry) {
        const e = spec.containerd.registries.find((r) => r.registry === addonRegistry) ?? spec.containerd.registries.find((r) => r.registry === "_default");
        if (!(e && e.mirrors.length > 0)) add("any", "addons.imageRegistry", `${e?.registry === addonRegistry && e.plainHttp ? "http" : "https"}://${addonRegistry}/v2/`);
    }
    return out;
}

/** The preflight script's SOURCES lines: `family<TAB>label<TAB>url<TAB>via` (no field holds a tab: URLs are validated without whitespace). */
export function sourceLines(spec: ClusterSpec): string[] {
    return sources(spec).map((s) => [s.family, s.label, s.url, s.via].join("\t"));
}
