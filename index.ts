/**
 * Read the stack configuration, validate it (every problem at once, before
 * any host is touched), build the cluster, export what users need.
 */
import * as pulumi from "@pulumi/pulumi";
import { Cluster } from "./components/cluster";
import { ConfigError, RawConfig, configWarnings, parseClusterConfig } from "./components/config";
import { renderProblems } from "./components/plan";

const project = pulumi.getProject();
// The raw strings Pulumi stores (JSON for objects), decoded by the config
// parser: a malformed value becomes a problem with its path, and a value
// stored as a secret is never quoted (the SDK's getObject would echo it).
const keys: (keyof RawConfig)[] = ["hosts", "ssh", "kubernetesVersion", "network", "apiServer", "kubeadm", "containerd", "preflight", "packages", "charts"];
const raw: RawConfig = Object.fromEntries(keys.map((k) => [k, pulumi.runtime.getConfig(`${project}:${k}`)]));
// (exported by @pulumi/pulumi 3.248's runtime/config.js, left out of its typings)
const { isConfigSecret } = require("@pulumi/pulumi/runtime/config") as { isConfigSecret(key: string): boolean };
const secretKeys = keys.filter((k) => isConfigSecret(`${project}:${k}`));
const spec = parseClusterConfig(raw, project, { encoded: true, secretKeys });
// Every command renders and fits, or the config is refused here, before anything is registered.
const renderFailures = renderProblems(spec);
if (renderFailures.length > 0) throw new ConfigError(renderFailures);
for (const w of configWarnings(spec)) pulumi.log.warn(w);
// Validated above; from here on the key only travels as a secret.
const sshPrivateKey = pulumi.secret((JSON.parse(raw.ssh as string) as { privateKey: string }).privateKey);

const cluster = new Cluster(project, { spec, secrets: { sshPrivateKey } });

/** Admin kubeconfig (secret): `pulumi stack output kubeconfig --show-secrets > kubeconfig`. */
export const kubeconfig = cluster.kubeconfig;
/** The API server URL written into the kubeconfig. */
export const apiEndpoint = cluster.apiEndpoint;
/** Nodes with their roles and addresses. */
export const nodes = cluster.nodes;
/** Kubernetes version the cluster runs. */
export const kubernetesVersion = spec.kubernetesVersion;
