/**
 * The add-ons: the ingress controller (Traefik), the dashboard (Headlamp)
 * behind it with TLS and a login token, metrics-server, and the smoke test
 * that proves the cluster works. Applied through the cluster's Kubernetes
 * provider as custom resources (`helm.v3.Release`, typed objects), so a
 * preview of a brand-new stack works; the Gateway API CRDs and the smoke test
 * are remote steps on the first control plane.
 */
import * as fs from "fs";
import * as pulumi from "@pulumi/pulumi";
import * as k8s from "@pulumi/kubernetes";
import * as command from "@pulumi/command";
import * as tls from "@pulumi/tls";
import { ClusterSpec } from "../model";
import { ScriptCall, StepConnection, StepTarget, step } from "../step";
import { ADDON_CHARTS, ADDON_IMAGES, AddonChart, CNI_CHARTS, GATEWAY_API } from "../versions";
import { chartReference, mergeValues } from "./cni";
import {
    DASHBOARD_LOGIN_ACCOUNT, DASHBOARD_NAMESPACE, INGRESS_CLASS, DASHBOARD_TLS_SECRET, INGRESS_NAMESPACE, IngressEndpoint,
    dashboardUrl, headlampValues, imageRef, ingressEndpoints, metricsServerValues, smokeIngressTargets, traefikValues,
} from "./values";

/** Lifetime of the ingress CA and of the dashboard certificate it issues. */
export const INGRESS_CA_VALIDITY_HOURS = 10 * 365 * 24;
export const DASHBOARD_CERT_VALIDITY_HOURS = 365 * 24;
export const DASHBOARD_CERT_EARLY_RENEWAL_HOURS = 30 * 24;

/** The gateway-api step: apply the Gateway API CRDs from a URL the host fetches, or a local file sent on stdin. */
export function gatewayApiCall(spec: ClusterSpec): ScriptCall & { stdinFile?: string } {
    const src = spec.addons.ingress.gatewayApiCrds;
    const url = /^https?:\/\//.test(src);
    return {
        script: "gateway-api",
        what: `apply the Gateway API ${GATEWAY_API.version} CRDs (${url ? src : `local file ${src}, sent on stdin`}); deleting this step keeps them`,
        vars: { CRDS_SOURCE: url ? src : "-", CRDS_VERSION: GATEWAY_API.version },
        ...(url ? {} : { stdinFile: src }),
    };
}

/** What the smoke test covers, versions included: its step runs again when this changes. */
export function smokeChecked(spec: ClusterSpec): string {
    const a = spec.addons;
    const parts = [`nodes ${spec.hosts.map((h) => h.name).join(",")}`, `kubernetes ${spec.kubernetesVersion}`];
    if (spec.network.cni !== "none") parts.push(`${spec.network.cni} ${CNI_CHARTS[spec.network.cni].version}`);
    if (a.ingress.enabled) parts.push(`traefik ${ADDON_CHARTS.traefik.version} (${a.ingress.exposure} on ${a.ingress.nodes.join(",")}, http ${a.ingress.httpPort})`);
    if (a.dashboard.enabled) parts.push(`headlamp ${ADDON_CHARTS.headlamp.version} at ${a.dashboard.host}`);
    if (a.metricsServer.enabled) parts.push(`metrics-server ${ADDON_CHARTS["metrics-server"].version}`);
    return parts.join("; ");
}

/** The smoke-test step on the first control plane. */
export function smokeTestCall(spec: ClusterSpec): ScriptCall {
    const a = spec.addons;
    return {
        script: "smoke-test",
        what: `smoke test: a pod on each of ${spec.hosts.length} nodes, cluster DNS, pod to pod, a Service` +
            `${a.ingress.enabled ? ", the ingress route on each ingress node" : ""}${a.dashboard.enabled ? ", the dashboard route" : ""}` +
            `${a.metricsServer.enabled ? ", the metrics API" : ""}; its namespace is deleted afterwards`,
        vars: {
            NODES: spec.hosts.map((h) => h.name),
            SMOKE_IMAGE: imageRef(ADDON_IMAGES.agnhost, a.imageRegistry),
            DNS_DOMAIN: spec.network.dnsDomain,
            INGRESS_CLASS: a.ingress.enabled ? INGRESS_CLASS : "",
            INGRESS_TARGETS: a.ingress.enabled ? smokeIngressTargets(spec) : [],
            DASHBOARD_HOST: a.dashboard.enabled ? a.dashboard.host : "",
            CHECK_METRICS: a.metricsServer.enabled,
            CHECKED: smokeChecked(spec),
        },
    };
}

export interface AddonsArgs {
    spec: ClusterSpec;
    provider: k8s.Provider;
    /** Where the remote add-on steps run: the first control plane. */
    firstNode: { name: string; connection: StepConnection; target: StepTarget; init: command.remote.Command };
    /** What every add-on waits for: the pod network (or every node's join when there is none). */
    after: pulumi.Resource[];
    /** The user's dashboard certificate key (`addons.dashboard.tls.key`), a secret. */
    dashboardTlsKey?: pulumi.Output<string>;
    /** Test-only: do not wait for pods. */
    skipAwait?: boolean;
}

/** The add-ons of a cluster; each one only when `addons.<name>.enabled`. */
export class Addons extends pulumi.ComponentResource {
    public readonly ingress?: k8s.helm.v3.Release;
    public readonly gatewayApi?: command.remote.Command;
    public readonly dashboard?: k8s.helm.v3.Release;
    public readonly metricsServer?: k8s.helm.v3.Release;
    public readonly smokeTest?: command.remote.Command;
    /** `https://<dashboard host>/`. */
    public readonly dashboardUrl?: string;
    /** The login token of the dashboard's ServiceAccount (secret). */
    public readonly dashboardToken?: pulumi.Output<string>;
    /** The CA that signed the dashboard certificate (PEM), for users to trust; absent when the user supplied the certificate. */
    public ingressCaCertificate?: pulumi.Output<string>;
    /** Where the ingress answers. */
    public readonly ingressEndpoints?: IngressEndpoint[];

    constructor(name: string, args: AddonsArgs, opts?: pulumi.ComponentResourceOptions) {
        super("kubeadm:index:Addons", name, {}, opts);
        const { spec } = args;
        const a = spec.addons;
        const k = { parent: this, provider: args.provider };
        const first = args.firstNode;
        const release = (chart: AddonChart, values: Record<string, unknown>, dependsOn: pulumi.Resource[], createNamespace: boolean) => {
            const pin = ADDON_CHARTS[chart];
            const source = spec.charts[pin.chart];
            return new k8s.helm.v3.Release(`${name}-${chart}`, {
                name: chart,
                ...chartReference(pin, source),
                namespace: pin.namespace,
                createNamespace,
                values: mergeValues(values, source?.values),
                skipAwait: args.skipAwait ?? false,
                timeout: 600,
                atomic: false,
                cleanupOnFail: true,
            }, { ...k, dependsOn });
        };
        const waits: pulumi.Resource[] = [];

        if (a.ingress.enabled) {
            if (a.ingress.gatewayApi) {
                const call = gatewayApiCall(spec);
                this.gatewayApi = step(`${first.name}-gateway-api`, {
                    connection: first.connection,
                    target: first.target,
                    script: call.script,
                    what: call.what,
                    vars: call.vars,
                    ...(call.stdinFile ? { stdin: fs.readFileSync(call.stdinFile, "utf8") } : {}),
                }, { parent: this, dependsOn: [first.init] });
            }
            // A host-network pod is "privileged" under Pod Security.
            const ns = new k8s.core.v1.Namespace(`${name}-traefik-namespace`, {
                metadata: {
                    name: INGRESS_NAMESPACE,
                    labels: { "pod-security.kubernetes.io/enforce": a.ingress.exposure === "hostNetwork" ? "privileged" : "baseline" },
                },
            }, { ...k, dependsOn: args.after });
            this.ingress = release("traefik", traefikValues(spec), [ns, ...args.after, ...(this.gatewayApi ? [this.gatewayApi] : [])], false);
            this.ingressEndpoints = ingressEndpoints(spec);
            waits.push(this.ingress);
        }

        if (a.metricsServer.enabled) {
            this.metricsServer = release("metrics-server", metricsServerValues(spec), args.after, false);
            waits.push(this.metricsServer);
        }

        if (a.dashboard.enabled && this.ingress) {
            const ns = new k8s.core.v1.Namespace(`${name}-headlamp-namespace`, {
                metadata: { name: DASHBOARD_NAMESPACE, labels: { "pod-security.kubernetes.io/enforce": "baseline" } },
            }, { ...k, dependsOn: args.after });
            const certPem: pulumi.Input<string> = a.dashboard.tlsCertificate ?? this.issueDashboardCert(name, spec);
            const keyPem = a.dashboard.tlsCertificate ? args.dashboardTlsKey : this.dashboardKeyPem;
            if (!keyPem) throw new Error("addons.dashboard.tls.certificate is set but its key was not passed as a secret");
            const tlsSecret = new k8s.core.v1.Secret(`${name}-dashboard-tls`, {
                metadata: { name: DASHBOARD_TLS_SECRET, namespace: DASHBOARD_NAMESPACE },
                type: "kubernetes.io/tls",
                stringData: { "tls.crt": certPem, "tls.key": pulumi.secret(keyPem) },
            }, { ...k, dependsOn: [ns] });
            this.dashboard = release("headlamp", headlampValues(spec), [ns, tlsSecret, this.ingress], false);
            waits.push(this.dashboard);

            // The login: a ServiceAccount with a long-lived token Secret, bound to the configured access.
            const sa = new k8s.core.v1.ServiceAccount(`${name}-dashboard-login`, {
                metadata: { name: DASHBOARD_LOGIN_ACCOUNT, namespace: DASHBOARD_NAMESPACE },
            }, { ...k, dependsOn: [ns] });
            new k8s.rbac.v1.ClusterRoleBinding(`${name}-dashboard-login-binding`, {
                // (the access level in the name: a changed roleRef cannot be updated in place, and a
                // new name lets the replacement be created before the old binding is deleted)
                metadata: { name: `kubeadm-pulumi:${DASHBOARD_LOGIN_ACCOUNT}:${a.dashboard.access}` },
                roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: a.dashboard.access },
                subjects: [{ kind: "ServiceAccount", name: DASHBOARD_LOGIN_ACCOUNT, namespace: DASHBOARD_NAMESPACE }],
            }, { ...k, dependsOn: [sa] });
            const token = new k8s.core.v1.Secret(`${name}-dashboard-login-token`, {
                metadata: {
                    name: `${DASHBOARD_LOGIN_ACCOUNT}-token`,
                    namespace: DASHBOARD_NAMESPACE,
                    annotations: { "kubernetes.io/service-account.name": DASHBOARD_LOGIN_ACCOUNT },
                },
                type: "kubernetes.io/service-account-token",
            }, { ...k, dependsOn: [sa] });
            this.dashboardUrl = dashboardUrl(a);
            this.dashboardToken = pulumi.secret(token.data.apply((d) => Buffer.from(d?.["token"] ?? "", "base64").toString("utf8")));
        }

        if (a.smokeTest.enabled) {
            this.smokeTest = step(`${first.name}-smoke-test`, {
                connection: first.connection,
                target: first.target,
                ...smokeTestCall(spec),
            }, { parent: this, dependsOn: [...args.after, ...waits] });
        }
        this.registerOutputs({});
    }

    private dashboardKeyPem?: pulumi.Output<string>;

    /** The ingress CA (exported for users to trust) and the dashboard's certificate from it. */
    private issueDashboardCert(name: string, spec: ClusterSpec): pulumi.Output<string> {
        const child = { parent: this };
        const secretKey = { ...child, additionalSecretOutputs: ["privateKeyPem", "privateKeyPemPkcs8", "privateKeyOpenssh"] };
        const caKey = new tls.PrivateKey(`${name}-ingress-ca-key`, { algorithm: "ECDSA", ecdsaCurve: "P256" }, secretKey);
        const ca = new tls.SelfSignedCert(`${name}-ingress-ca-cert`, {
            privateKeyPem: caKey.privateKeyPem,
            subject: { commonName: `${spec.clusterName} ingress CA`, organization: "kubeadm-pulumi" },
            isCaCertificate: true,
            validityPeriodHours: INGRESS_CA_VALIDITY_HOURS,
            allowedUses: ["cert_signing", "crl_signing", "digital_signature"],
            setSubjectKeyId: true,
        }, child);
        const key = new tls.PrivateKey(`${name}-dashboard-key`, { algorithm: "ECDSA", ecdsaCurve: "P256" }, secretKey);
        const csr = new tls.CertRequest(`${name}-dashboard-csr`, {
            privateKeyPem: key.privateKeyPem,
            subject: { commonName: spec.addons.dashboard.host },
            dnsNames: [spec.addons.dashboard.host],
        }, child);
        const cert = new tls.LocallySignedCert(`${name}-dashboard-cert`, {
            certRequestPem: csr.certRequestPem,
            caPrivateKeyPem: caKey.privateKeyPem,
            caCertPem: ca.certPem,
            validityPeriodHours: DASHBOARD_CERT_VALIDITY_HOURS,
            earlyRenewalHours: DASHBOARD_CERT_EARLY_RENEWAL_HOURS,
            allowedUses: ["digital_signature", "key_encipherment", "server_auth"],
        }, child);
        this.ingressCaCertificate = ca.certPem;
        this.dashboardKeyPem = pulumi.secret(key.privateKeyPem);
        return cert.certPem;
    }
}
