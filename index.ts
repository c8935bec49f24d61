/**
 * Read the stack configuration, validate it (every problem at once, before
 * any host is touched), build the cluster, export what users need.
 */
import * as pulumi from "@pulumi/pulumi";
import { Cluster } from "./components/cluster";
import { parseClusterConfig, RawConfig } from "./components/config";

const config = new pulumi.Config();
const raw: RawConfig = {
    hosts: config.getObject("hosts"),
    ssh: config.getObject("ssh"),
    kubernetesVersion: config.get("kubernetesVersion"),
    network: config.getObject("network"),
    apiServer: config.getObject("apiServer"),
    kubeadm: config.getObject("kubeadm"),
    preflight: config.getObject("preflight"),
    packages: config.getObject("packages"),
    charts: config.getObject("charts"),
};
const spec = parseClusterConfig(raw, pulumi.getProject());
// Validated above; from here on the key only travels as a secret.
const sshPrivateKey = pulumi.secret((raw.ssh as { privateKey: string }).privateKey);

const cluster = new Cluster(pulumi.getProject(), { spec, secrets: { sshPrivateKey } });

/** Admin kubeconfig (secret): `pulumi stack output kubeconfig --show-secrets > kubeconfig`. */
export const kubeconfig = cluster.kubeconfig;
/** The API server URL written into the kubeconfig. */
export const apiEndpoint = cluster.apiEndpoint;
/** Nodes with their roles and addresses. */
export const nodes = cluster.nodes;
/** Kubernetes version the cluster runs. */
export const kubernetesVersion = spec.kubernetesVersion;
