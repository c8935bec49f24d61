import * as crypto from "crypto";
import * as net from "net";
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import * as YAML from "yaml";

/** kubeadm's CA lifetime: 10 years (`caCertificateValidityPeriod` default in v1beta4). */
export const CA_VALIDITY_HOURS = 10 * 365 * 24;
/** kubeadm's leaf lifetime: 1 year (`certificateValidityPeriod` default in v1beta4). */
export const ADMIN_CERT_VALIDITY_HOURS = 365 * 24;
/**
 * Mark the admin certificate for renewal in its last 30 days. This only takes
 * effect on `pulumi up --refresh` (pulumi-tls#39: no renewal without a refresh).
 */
export const ADMIN_CERT_EARLY_RENEWAL_HOURS = 30 * 24;

/** Key usages of a CA certificate (kubeadm `pkiutil.NewSelfSignedCACert`). */
const CA_USES = ["cert_signing", "crl_signing", "digital_signature", "key_encipherment"];

/**
 * The shared PKI files every control plane needs, relative to
 * `/etc/kubernetes`. kubeadm uses a cert/key pair it finds there and signs
 * everything else with it, which is what lets joining control planes get the
 * CAs copied instead of `--upload-certs` (whose secret expires after 2 hours).
 */
export const SHARED_PKI_FILES = [
    "pki/ca.crt",
    "pki/ca.key",
    "pki/front-proxy-ca.crt",
    "pki/front-proxy-ca.key",
    "pki/etcd/ca.crt",
    "pki/etcd/ca.key",
    "pki/sa.key",
    "pki/sa.pub",
] as const;

export type SharedPkiFile = (typeof SHARED_PKI_FILES)[number];

/** Inputs of the cluster PKI. */
export interface PkiArgs {
    /** Cluster name, written into the CA subjects' organisation for recognisability. */
    clusterName: string;
}

/**
 * The cluster PKI, all in (encrypted) stack state: the cluster CA, the
 * front-proxy CA, the etcd CA, the service-account key pair and an admin client
 * certificate in group `kubeadm:cluster-admins` (bound to cluster-admin by
 * kubeadm during init since 1.29). Private keys are ECDSA P-256 (the provider's
 * default curve P224 is not accepted by Kubernetes); the service-account key is
 * RSA 2048 like kubeadm's own.
 */
export class Pki extends pulumi.ComponentResource {
    /** Cluster CA certificate (PEM), public. */
    public readonly caCertPem: pulumi.Output<string>;
    /** `sha256:<hex>` of the CA's DER SubjectPublicKeyInfo, as `kubeadm join` expects. */
    public readonly discoveryHash: pulumi.Output<string>;
    /** The shared control-plane files, keyed by path under /etc/kubernetes; a secret. */
    public readonly sharedFiles: pulumi.Output<Record<SharedPkiFile, string>>;
    /** Admin client certificate (PEM). */
    public readonly adminCertPem: pulumi.Output<string>;
    /** Admin client key (PEM), a secret. */
    public readonly adminKeyPem: pulumi.Output<string>;
    private readonly ca: { key: tls.PrivateKey; cert: tls.SelfSignedCert };
    /** Cluster CA private key (PEM), a secret: signs the `users` certificates. */
    public readonly caKeyPem: pulumi.Output<string>;

    constructor(name: string, args: PkiArgs, opts?: pulumi.ComponentResourceOptions) {
        super("kubeadm:index:Pki", name, {}, opts);
        const child = { parent: this };

        const ca = selfSignedCa(`${name}-ca`, "kubernetes", args.clusterName, child);
        const frontProxyCa = selfSignedCa(`${name}-front-proxy-ca`, "front-proxy-ca", args.clusterName, child);
        const etcdCa = selfSignedCa(`${name}-etcd-ca`, "etcd-ca", args.clusterName, child);

        const saKey = new tls.PrivateKey(`${name}-sa-key`, { algorithm: "RSA", rsaBits: 2048 }, {
            ...child,
            additionalSecretOutputs: ["privateKeyPem", "privateKeyPemPkcs8", "privateKeyOpenssh"],
        });

        const adminKey = ecdsaKey(`${name}-admin-key`, child);
        const adminCsr = new tls.CertRequest(`${name}-admin-csr`, {
            privateKeyPem: adminKey.privateKeyPem,
            subject: { commonName: "kubernetes-admin", organization: "kubeadm:cluster-admins" },
        }, child);
        const adminCert = new tls.LocallySignedCert(`${name}-admin-cert`, {
            certRequestPem: adminCsr.certRequestPem,
            caPrivateKeyPem: ca.key.privateKeyPem,
            caCertPem: ca.cert.certPem,
            validityPeriodHours: ADMIN_CERT_VALIDITY_HOURS,
            earlyRenewalHours: ADMIN_CERT_EARLY_RENEWAL_HOURS,
            allowedUses: ["digital_signature", "key_encipherment", "client_auth"],
        }, child);

        this.ca = ca;
        this.caCertPem = ca.cert.certPem;
        this.discoveryHash = ca.cert.certPem.apply(discoveryHash);
        this.adminCertPem = adminCert.certPem;
        this.adminKeyPem = pulumi.secret(adminKey.privateKeyPem);
        this.caKeyPem = pulumi.secret(ca.key.privateKeyPem);
        this.sharedFiles = pulumi.secret(pulumi.all([
            ca.cert.certPem, ca.key.privateKeyPem,
            frontProxyCa.cert.certPem, frontProxyCa.key.privateKeyPem,
            etcdCa.cert.certPem, etcdCa.key.privateKeyPem,
            saKey.privateKeyPem, saKey.publicKeyPem,
        ]).apply(([caCrt, caKey, fpCrt, fpKey, etcdCrt, etcdKey, saPriv, saPub]) => ({
            "pki/ca.crt": caCrt,
            "pki/ca.key": caKey,
            "pki/front-proxy-ca.crt": fpCrt,
            "pki/front-proxy-ca.key": fpKey,
            "pki/etcd/ca.crt": etcdCrt,
            "pki/etcd/ca.key": etcdKey,
            "pki/sa.key": saPriv,
            "pki/sa.pub": saPub,
        })));

        this.registerOutputs({
            caCertPem: this.caCertPem,
            discoveryHash: this.discoveryHash,
            adminCertPem: this.adminCertPem,
        });
    }

    /**
     * The serving certificate of one node's kubelet, signed by the cluster CA
     * (subject `system:node:<name>` in `system:nodes`, as the kubelet's own
     * serving CSRs ask for; names: the node name and its addresses), as the
     * bundle files init and join install. Instead of kubelet serving CSRs
     * (`serverTLSBootstrap`), which someone must approve again at every
     * renewal, or metrics-server's `--kubelet-insecure-tls`. Renewed like the
     * admin certificate (a `pulumi up --refresh` in its last 30 days).
     */
    kubeletServingCert(name: string, host: { name: string; address: string; internalAddress?: string }): pulumi.Output<Record<string, string>> {
        const child = { parent: this };
        const key = ecdsaKey(`${name}-key`, child);
        const addresses = [...new Set([host.internalAddress, host.address].filter((a): a is string => a !== undefined))];
        const isIp = (a: string) => net.isIP(a) !== 0;
        const csr = new tls.CertRequest(`${name}-csr`, {
            privateKeyPem: key.privateKeyPem,
            subject: { commonName: `system:node:${host.name}`, organization: "system:nodes" },
            dnsNames: [host.name, ...addresses.filter((a) => !isIp(a))],
            ipAddresses: addresses.filter(isIp),
        }, child);
        const cert = new tls.LocallySignedCert(`${name}-cert`, {
            certRequestPem: csr.certRequestPem,
            caPrivateKeyPem: this.ca.key.privateKeyPem,
            caCertPem: this.ca.cert.certPem,
            validityPeriodHours: ADMIN_CERT_VALIDITY_HOURS,
            earlyRenewalHours: ADMIN_CERT_EARLY_RENEWAL_HOURS,
            allowedUses: ["digital_signature", "key_encipherment", "server_auth"],
        }, child);
        return pulumi.secret(pulumi.all([cert.certPem, key.privateKeyPem]).apply(([c, k]): Record<string, string> => ({
            "kubelet/serving.crt": c,
            "kubelet/serving.key": k,
        })));
    }
}

function ecdsaKey(name: string, opts: pulumi.CustomResourceOptions): tls.PrivateKey {
    return new tls.PrivateKey(name, { algorithm: "ECDSA", ecdsaCurve: "P256" }, {
        ...opts,
        additionalSecretOutputs: ["privateKeyPem", "privateKeyPemPkcs8", "privateKeyOpenssh"],
    });
}

function selfSignedCa(name: string, commonName: string, clusterName: string, opts: pulumi.CustomResourceOptions) {
    const key = ecdsaKey(`${name}-key`, opts);
    const cert = new tls.SelfSignedCert(`${name}-cert`, {
        privateKeyPem: key.privateKeyPem,
        subject: { commonName, organizationalUnit: clusterName },
        isCaCertificate: true,
        validityPeriodHours: CA_VALIDITY_HOURS,
        allowedUses: CA_USES,
        setSubjectKeyId: true,
    }, opts);
    return { key, cert };
}

/**
 * The `--discovery-token-ca-cert-hash` of a CA: `sha256:` + hex SHA-256 of the
 * certificate's DER SubjectPublicKeyInfo (kubeadm `pubkeypin.Hash`).
 */
export function discoveryHash(caCertPem: string): string {
    const spki = new crypto.X509Certificate(caCertPem).publicKey.export({ type: "spki", format: "der" });
    return "sha256:" + crypto.createHash("sha256").update(spki).digest("hex");
}

/** Connection details of the generated admin kubeconfig. */
export interface KubeconfigArgs {
    clusterName: string;
    /** The kubeconfig's user entry (default `<clusterName>-admin`). */
    userName?: string;
    /** `https://host:port` of the API server as seen from where Pulumi runs. */
    server: string;
    caCertPem: string;
    clientCertPem: string;
    clientKeyPem: string;
}

/**
 * A kubeconfig for the generated admin certificate, built in the program (not
 * copied from a host), so the Kubernetes provider needs nothing from the hosts.
 */
export function renderKubeconfig(a: KubeconfigArgs): string {
    const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");
    const user = a.userName ?? `${a.clusterName}-admin`;
    return YAML.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [{ name: a.clusterName, cluster: { server: a.server, "certificate-authority-data": b64(a.caCertPem) } }],
        users: [{ name: user, user: { "client-certificate-data": b64(a.clientCertPem), "client-key-data": b64(a.clientKeyPem) } }],
        contexts: [{ name: `${user}@${a.clusterName}`, context: { cluster: a.clusterName, user } }],
        "current-context": `${user}@${a.clusterName}`,
    }, { lineWidth: 0 });
}
