/**
 * Every version the program installs, in one place. Each pin says where it
 * came from; change them here and nowhere else.
 */
import { CniName } from "./model";

/**
 * Kubernetes minors the program supports, with the newest patch known to be
 * published for each (pkgs.k8s.io, checked 2026-11; see docs/UPSTREAM notes in
 * the README). kubeadm config API v1beta4 is used for all of them (v1beta3 was
 * removed in kubeadm 1.36).
 */
export const KUBERNETES_MINORS = {
    "1.35": { latestPatch: "1.35.8" },
    "1.36": { latestPatch: "1.36.4" },
    "1.37": { latestPatch: "1.37.0" },
} as const;

export type KubernetesMinor = keyof typeof KUBERNETES_MINORS;

/**
 * Default Kubernetes version: the newest minor with a published patch that
 * this project has been exercised with (1.37 packages exist, but 1.36.4 is
 * the version the examples and tests are written for).
 */
export const DEFAULT_KUBERNETES_VERSION = "1.36.4";

/**
 * The pause (sandbox) image tag kubeadm of each minor expects
 * (`PauseVersion` in kubernetes/kubernetes cmd/kubeadm/app/constants/constants.go).
 * 1.35: 3.10.1 (v1.35.4 constants). 1.36: 3.10.2, read from the real kubeadm
 * v1.36.4 built from its Go module (`kubeadm config images list`, see
 * tests/engine). 1.37: not on the module proxy yet; 3.10.2 assumed. The
 * prepare step compares this with `kubeadm config images list` on the host
 * and fails loudly if they differ, so a stale pin cannot silently
 * mis-configure containerd.
 */
export const PAUSE_TAG: Record<KubernetesMinor, string> = {
    "1.35": "3.10.1",
    "1.36": "3.10.2",
    "1.37": "3.10.2",
};

/**
 * containerd from Docker's `containerd.io` package (download.docker.com apt and
 * rpm repos). Kubernetes 1.36+ needs containerd >= 2.0; Debian 12's own
 * containerd is 1.6. 2.2.6 is the 2.2 patch seen pinned across public installs
 * in 2026-11 (`containerd.io=2.2.6-1~ubuntu.24.04~noble`). The host resolves
 * the distro suffix with `apt-cache madison` / dnf, so only the upstream
 * version is pinned here.
 */
export const CONTAINERD_VERSION = "2.2.6";

/** Docker package repository that ships `containerd.io` (apt: `<base>/<distro id>`, rpm: `<base>/<centos|rhel|fedora>`). */
export const DOCKER_REPO_BASE = "https://download.docker.com/linux";

/** pkgs.k8s.io: one repository per Kubernetes minor (the legacy apt.kubernetes.io is frozen). */
export const KUBERNETES_REPO_BASE = "https://pkgs.k8s.io/core:/stable:";

/** Default registry for control-plane images (kubeadm default since 1.25). */
export const DEFAULT_IMAGE_REPOSITORY = "registry.k8s.io";

/** A Helm chart pinned by repository, name and exact version. */
export interface ChartPin {
    repo: string;
    chart: string;
    version: string;
    namespace: string;
    /** Value paths the program sets from the cluster's settings: `charts.<chart>.values` may not change them. */
    ownedValues: string[];
}

/**
 * CNI charts. Sources: flannel-io/flannel chart index (v0.28.5, 2026);
 * projectcalico tigera-operator chart index (v3.31.4: the newest release line
 * whose chart still ships its CRDs in the same chart); cilium chart index
 * (1.20.2).
 */
export const CNI_CHARTS: Record<CniName, ChartPin> = {
    flannel: {
        repo: "https://flannel-io.github.io/flannel/",
        chart: "flannel",
        version: "v0.28.5",
        namespace: "kube-flannel",
        ownedValues: ["podCidr"],
    },
    calico: {
        repo: "https://docs.tigera.io/calico/charts",
        chart: "tigera-operator",
        version: "v3.31.4",
        namespace: "tigera-operator",
        ownedValues: ["installation.calicoNetwork.ipPools"],
    },
    cilium: {
        repo: "https://helm.cilium.io/",
        chart: "cilium",
        version: "1.20.2",
        namespace: "kube-system",
        ownedValues: ["ipam.mode"],
    },
};

/** Add-ons the program installs from charts. */
export type AddonChart = "traefik" | "headlamp" | "metrics-server";

/**
 * Add-on charts. Sources: the traefik-helm-chart repository at its 41.3.0
 * release commit (Chart.yaml appVersion v3.7.11); kubernetes-sigs/headlamp
 * charts/headlamp 0.45.0 (appVersion 0.45.0); kubernetes-sigs/metrics-server
 * charts/metrics-server 3.13.1 (appVersion 0.8.1).
 */
export const ADDON_CHARTS: Record<AddonChart, ChartPin> = {
    traefik: {
        repo: "https://traefik.github.io/charts",
        chart: "traefik",
        version: "41.3.0",
        namespace: "traefik",
        ownedValues: ["deployment.kind", "hostNetwork", "ports.web", "ports.websecure", "ingressClass", "providers.kubernetesGateway.enabled", "affinity"],
    },
    headlamp: {
        repo: "https://kubernetes-sigs.github.io/headlamp/",
        chart: "headlamp",
        version: "0.45.0",
        namespace: "headlamp",
        ownedValues: ["ingress", "clusterRoleBinding.create"],
    },
    "metrics-server": {
        repo: "https://kubernetes-sigs.github.io/metrics-server/",
        chart: "metrics-server",
        version: "3.13.1",
        namespace: "kube-system",
        ownedValues: ["args"],
    },
};

/** An image as `<registry>/<repository>:<tag>`; `addons.imageRegistry` replaces the registry only. */
export interface ImagePin {
    registry: string;
    repository: string;
    tag: string;
}

/**
 * Every image of the add-ons, set explicitly in the chart values so this
 * table is what runs. traefik: the chart's appVersion. headlamp: the chart's
 * appVersion (its template prefixes `v`). metrics-server: v0.9.0, the newest
 * release (`sigs.k8s.io/metrics-server` v0.9.0 on the Go module proxy); the
 * 3.13.1 chart defaults to 0.8.1 and its arguments serve both. agnhost: the
 * smoke test's workload, 2.63.0 as kubernetes v1.36.4 pins it
 * (test/utils/image/manifest.go; alpine-based, so it has busybox sh, wget, nslookup).
 */
export const ADDON_IMAGES = {
    traefik: { registry: "docker.io", repository: "traefik", tag: "v3.7.11" },
    headlamp: { registry: "ghcr.io", repository: "headlamp-k8s/headlamp", tag: "v0.45.0" },
    metricsServer: { registry: "registry.k8s.io", repository: "metrics-server/metrics-server", tag: "v0.9.0" },
    agnhost: { registry: "registry.k8s.io", repository: "e2e-test-images/agnhost", tag: "2.63.0" },
} as const satisfies Record<string, ImagePin>;

/**
 * The flannel chart's images (chart values `flannel.image.repository`,
 * `flannel.flannel_cni.image.repository`; tags left to the pinned chart):
 * what `addons.imageRegistry` rewrites for the CNI.
 */
export const FLANNEL_IMAGE_REPOSITORIES = {
    flannel: { registry: "ghcr.io", repository: "flannel-io/flannel" },
    cni: { registry: "ghcr.io", repository: "flannel-io/flannel-cni-plugin" },
} as const;

/**
 * Gateway API standard-channel CRDs, which the Traefik chart does not ship:
 * v1.5.1, the release the traefik chart 41.3.0 README installs.
 */
export const GATEWAY_API = {
    version: "v1.5.1",
    url: "https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.5.1/standard-install.yaml",
} as const;

/** Every chart the program can install, by chart name (the keys of the stack config's `charts`). */
export function chartNames(): string[] {
    return [...new Set([...Object.values(CNI_CHARTS), ...Object.values(ADDON_CHARTS)].map((p) => p.chart))];
}

/** The pin of a chart by its name. */
export function chartPin(name: string): ChartPin | undefined {
    return [...Object.values(CNI_CHARTS), ...Object.values(ADDON_CHARTS)].find((p) => p.chart === name);
}
