/**
 * Chart values of the add-ons, computed from the validated model only (no
 * Pulumi calls): what the components install, what the plan shows, and what
 * the tests render with the real charts.
 */
import { AddonsSpec, ClusterSpec, HostSpec, nodeAddress } from "../model";
import { ADDON_IMAGES, FLANNEL_IMAGE_REPOSITORIES, ImagePin } from "../versions";

/** Namespaces and names of the objects the program itself creates around the charts. */
export const DASHBOARD_NAMESPACE = "headlamp";
export const DASHBOARD_TLS_SECRET = "dashboard-tls";
export const DASHBOARD_LOGIN_ACCOUNT = "dashboard-login";
export const INGRESS_NAMESPACE = "traefik";
export const INGRESS_CLASS = "traefik";
/** Traefik's own entrypoints ("traefik": health and API; "metrics") on host-network nodes, moved off 8080/9100 (often taken; 9100 is node-exporter's). */
export const TRAEFIK_HOST_NETWORK_INTERNAL_PORTS = { traefik: 9000, metrics: 9101 } as const;
/** The CA metrics-server checks kubelet serving certificates against: the cluster CA every pod gets with its service-account token. */
export const POD_CLUSTER_CA = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";

/** `registry` replaced by `addons.imageRegistry` when set; repository path and tag kept. */
export function imagePin(pin: ImagePin, imageRegistry: string | undefined): ImagePin {
    return { registry: imageRegistry ?? pin.registry, repository: pin.repository, tag: pin.tag };
}

/** `registry/repository:tag`. */
export function imageRef(pin: ImagePin, imageRegistry?: string): string {
    const p = imagePin(pin, imageRegistry);
    return `${p.registry}/${p.repository}:${p.tag}`;
}

/** The hosts the ingress controller runs on. */
export function ingressHosts(spec: ClusterSpec): HostSpec[] {
    return spec.hosts.filter((h) => spec.addons.ingress.nodes.includes(h.name));
}

/** How clients reach the ingress: one entry per ingress node. */
export interface IngressEndpoint {
    node: string;
    address: string;
    http: string;
    https: string;
}

export function ingressEndpoints(spec: ClusterSpec): IngressEndpoint[] {
    const { httpPort, httpsPort } = spec.addons.ingress;
    const hostPort = (a: string, p: number) => `${a.includes(":") ? `[${a}]` : a}:${p}`;
    return ingressHosts(spec).map((h) => ({
        node: h.name,
        address: h.address,
        http: `http://${hostPort(h.address, httpPort)}/`,
        https: `https://${hostPort(h.address, httpsPort)}/`,
    }));
}

/** The dashboard's URL as users open it. */
export function dashboardUrl(addons: AddonsSpec): string {
    const port = addons.ingress.httpsPort === 443 ? "" : `:${addons.ingress.httpsPort}`;
    return `https://${addons.dashboard.host}${port}/`;
}

/** Schedule only on the named nodes (node names are the hosts' hostnames), control planes included. */
function onNodes(names: readonly string[]) {
    return {
        affinity: {
            nodeAffinity: {
                requiredDuringSchedulingIgnoredDuringExecution: {
                    nodeSelectorTerms: [{ matchExpressions: [{ key: "kubernetes.io/hostname", operator: "In", values: [...names] }] }],
                },
            },
        },
        tolerations: [{ key: "node-role.kubernetes.io/control-plane", operator: "Exists", effect: "NoSchedule" }],
    };
}

/**
 * Traefik: a DaemonSet on the ingress nodes, the default IngressClass, the
 * Kubernetes Ingress and Gateway API providers. `hostNetwork`: binds the
 * nodes' ports directly (works with any CNI, the tutorials' setup); binding
 * ports below 1024 in the host's network namespace takes root with only
 * NET_BIND_SERVICE (every other capability dropped, read-only root file
 * system): a non-root process would need file capabilities on the binary
 * (traefik-helm-chart EXAMPLES.md "Bind to privileged ports"). `nodePort`:
 * an unprivileged pod behind a NodePort Service.
 */
export function traefikValues(spec: ClusterSpec): Record<string, unknown> {
    const a = spec.addons;
    const ing = a.ingress;
    const image = imagePin(ADDON_IMAGES.traefik, a.imageRegistry);
    const common = {
        image: { registry: image.registry, repository: image.repository, tag: image.tag },
        deployment: { kind: "DaemonSet", ...(ing.exposure === "hostNetwork" ? { dnsPolicy: "ClusterFirstWithHostNet" } : {}) },
        ingressClass: { enabled: true, isDefaultClass: true, name: INGRESS_CLASS },
        providers: { kubernetesIngress: { enabled: true }, kubernetesGateway: { enabled: ing.gatewayApi } },
        gateway: { enabled: ing.gatewayApi },
        ...onNodes(ing.nodes),
    };
    if (ing.exposure === "hostNetwork") {
        return {
            ...common,
            hostNetwork: true,
            // One pod per node on fixed host ports: the old pod must go before the new one starts.
            updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } },
            ports: {
                traefik: { port: TRAEFIK_HOST_NETWORK_INTERNAL_PORTS.traefik },
                metrics: { port: TRAEFIK_HOST_NETWORK_INTERNAL_PORTS.metrics },
                web: { port: ing.httpPort },
                websecure: { port: ing.httpsPort },
            },
            service: { spec: { type: "ClusterIP" } },
            securityContext: {
                allowPrivilegeEscalation: false,
                capabilities: { drop: ["ALL"], add: ["NET_BIND_SERVICE"] },
                readOnlyRootFilesystem: true,
                runAsNonRoot: false,
                runAsUser: 0,
                runAsGroup: 0,
            },
            podSecurityContext: { runAsNonRoot: false, runAsUser: 0, runAsGroup: 0, seccompProfile: { type: "RuntimeDefault" } },
            ...(ing.gatewayApi ? { gateway: { enabled: true, listeners: { web: { port: ing.httpPort } } } } : {}),
        };
    }
    return {
        ...common,
        ports: { web: { nodePort: ing.httpPort }, websecure: { nodePort: ing.httpsPort } },
        service: { spec: { type: "NodePort" } },
    };
}

/**
 * Headlamp behind the ingress at `addons.dashboard.host`, TLS from the
 * program's Secret. Its own service account gets no binding (the chart's
 * default binds it to cluster-admin): what a user can do is what the token
 * they log in with allows.
 */
export function headlampValues(spec: ClusterSpec): Record<string, unknown> {
    const a = spec.addons;
    const image = imagePin(ADDON_IMAGES.headlamp, a.imageRegistry);
    return {
        image: { registry: image.registry, repository: image.repository, tag: image.tag },
        clusterRoleBinding: { create: false },
        ingress: {
            enabled: true,
            ingressClassName: INGRESS_CLASS,
            hosts: [{ host: a.dashboard.host, paths: [{ path: "/", type: "Prefix" }] }],
            tls: [{ secretName: DASHBOARD_TLS_SECRET, hosts: [a.dashboard.host] }],
        },
    };
}

/**
 * metrics-server checking the kubelets' serving certificates against the
 * cluster CA (the program issues them, see pki.ts `kubeletServingCert`):
 * no `--kubelet-insecure-tls`.
 */
export function metricsServerValues(spec: ClusterSpec): Record<string, unknown> {
    const image = imagePin(ADDON_IMAGES.metricsServer, spec.addons.imageRegistry);
    return {
        image: { repository: `${image.registry}/${image.repository}`, tag: image.tag },
        args: [`--kubelet-certificate-authority=${POD_CLUSTER_CA}`],
    };
}

/** flannel's images from `addons.imageRegistry` (tags stay the pinned chart's). */
export function flannelImageValues(imageRegistry: string | undefined): Record<string, unknown> {
    if (!imageRegistry) return {};
    const f = FLANNEL_IMAGE_REPOSITORIES;
    return {
        flannel: {
            image: { repository: `${imageRegistry}/${f.flannel.repository}` },
            flannel_cni: { image: { repository: `${imageRegistry}/${f.cni.repository}` } },
        },
    };
}

/** The node addresses the smoke test reaches the ingress at. */
export function smokeIngressTargets(spec: ClusterSpec): string[] {
    return ingressHosts(spec).map((h) => {
        const a = nodeAddress(h);
        return `${a.includes(":") ? `[${a}]` : a}:${spec.addons.ingress.httpPort}`;
    });
}
