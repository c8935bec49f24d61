/**
 * Users other than the admin (`users` in the stack config): what
 * `kubeadm kubeconfig user` does by hand, kept in step with the config.
 * Each user gets a client certificate from the cluster CA (CN = name,
 * O = group), a binding to the ClusterRole named in config, and a kubeconfig.
 *
 * Kubernetes cannot revoke a client certificate (no CRL in the API server):
 * removing a user deletes the binding, and that is what ends their access;
 * the certificate only leaves stack state and stays valid until it expires.
 * Hence config/users.ts refuses groups that carry access by themselves
 * (`system:masters`, `kubeadm:cluster-admins`).
 */
import * as pulumi from "@pulumi/pulumi";
import * as k8s from "@pulumi/kubernetes";
import * as tls from "@pulumi/tls";
import { UserSpec } from "./model";
import { ADMIN_CERT_EARLY_RENEWAL_HOURS, ADMIN_CERT_VALIDITY_HOURS, renderKubeconfig } from "./pki";

/** Label on every binding the program makes for a user. */
export const USER_BINDING_LABEL = "kubeadm-pulumi.io/user";

/** Inputs of the users component. */
export interface UsersArgs {
    /** The validated `users` list. */
    users: readonly UserSpec[];
    /** Cluster name, for the kubeconfigs. */
    clusterName: string;
    /** `https://host:port` of the API server, for the kubeconfigs. */
    server: string;
    /** Cluster CA certificate (PEM). */
    caCertPem: pulumi.Input<string>;
    /** Cluster CA private key (PEM), a secret. */
    caKeyPem: pulumi.Input<string>;
    /** The cluster's Kubernetes provider (admin credentials). */
    provider: k8s.Provider;
}

/** Name of the binding the program makes for a user (an RBAC name: any path segment). */
export function userBindingName(user: UserSpec): string {
    return `kubeadm-pulumi:user:${user.name}`;
}

/** What the program binds for one user. */
export interface UserBinding {
    kind: "ClusterRoleBinding" | "RoleBinding";
    metadata: { name: string; namespace?: string; labels: Record<string, string>; annotations: Record<string, string> };
    roleRef: { apiGroup: string; kind: string; name: string };
    subjects: { apiGroup: string; kind: string; name: string }[];
}

/** The binding of one user: a RoleBinding in `namespace` when set, otherwise a ClusterRoleBinding; always to a ClusterRole. */
export function userBinding(user: UserSpec): UserBinding {
    return {
        kind: user.namespace ? "RoleBinding" : "ClusterRoleBinding",
        metadata: {
            name: userBindingName(user),
            ...(user.namespace ? { namespace: user.namespace } : {}),
            labels: { "app.kubernetes.io/managed-by": "kubeadm-pulumi" },
            annotations: { [USER_BINDING_LABEL]: user.name },
        },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: user.role },
        subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: user.name }],
    };
}

/** A certificate, a binding and a kubeconfig per user. */
export class Users extends pulumi.ComponentResource {
    /** Kubeconfig per user name; a secret. */
    public readonly kubeconfigs: pulumi.Output<Record<string, string>>;

    constructor(name: string, args: UsersArgs, opts?: pulumi.ComponentResourceOptions) {
        super("kubeadm:index:Users", name, {}, opts);
        const child = { parent: this };
        const kubeconfigs: Record<string, pulumi.Output<string>> = {};
        for (const user of args.users) {
            const key = new tls.PrivateKey(`${name}-${user.name}-key`, { algorithm: "ECDSA", ecdsaCurve: "P256" }, {
                ...child,
                additionalSecretOutputs: ["privateKeyPem", "privateKeyPemPkcs8", "privateKeyOpenssh"],
            });
            const csr = new tls.CertRequest(`${name}-${user.name}-csr`, {
                privateKeyPem: key.privateKeyPem,
                subject: { commonName: user.name, ...(user.groups[0] ? { organization: user.groups[0] } : {}) },
            }, child);
            const cert = new tls.LocallySignedCert(`${name}-${user.name}-cert`, {
                certRequestPem: csr.certRequestPem,
                caPrivateKeyPem: args.caKeyPem,
                caCertPem: args.caCertPem,
                validityPeriodHours: ADMIN_CERT_VALIDITY_HOURS,
                earlyRenewalHours: ADMIN_CERT_EARLY_RENEWAL_HOURS,
                allowedUses: ["digital_signature", "key_encipherment", "client_auth"],
            }, child);
            const b = userBinding(user);
            const bindingArgs = { metadata: b.metadata, roleRef: b.roleRef, subjects: b.subjects };
            const bindingOpts = { ...child, provider: args.provider };
            if (b.kind === "RoleBinding") new k8s.rbac.v1.RoleBinding(`${name}-${user.name}-binding`, bindingArgs, bindingOpts);
            else new k8s.rbac.v1.ClusterRoleBinding(`${name}-${user.name}-binding`, bindingArgs, bindingOpts);
            kubeconfigs[user.name] = pulumi.all([args.caCertPem, cert.certPem, key.privateKeyPem]).apply(([ca, crt, k]) => renderKubeconfig({
                clusterName: args.clusterName, userName: user.name, server: args.server, caCertPem: ca, clientCertPem: crt, clientKeyPem: k,
            }));
        }
        this.kubeconfigs = pulumi.secret(pulumi.all(kubeconfigs));
        this.registerOutputs({ kubeconfigs: this.kubeconfigs });
    }
}
