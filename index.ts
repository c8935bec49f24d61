/**
 * Read the stack configuration, validate it (every problem at once, before
 * any host is touched), build the cluster, export what users need.
 */
import * as pulumi from "@pulumi/pulumi";
import { Cluster } from "./components/cluster";
import { CONFIG_KEYS, ConfigError, RawConfig, configWarnings, parseClusterConfig, sshKeys } from "./components/config";
import { renderProblems } from "./components/plan";
import { agentProblem } from "./components/reach";

const project = pulumi.getProject();
// The raw strings Pulumi stores (JSON for objects), decoded by the config
// parser: a malformed value becomes a problem with its path, and a value
// stored as a secret is never quoted (the SDK's getObject would echo it).
const keys: readonly (keyof RawConfig)[] = CONFIG_KEYS;
const raw: RawConfig = Object.fromEntries(keys.map((k) => [k, pulumi.runtime.getConfig(`${project}:${k}`)]));
// (exported by @pulumi/pulumi 3.248's runtime/config.js, left out of its typings)
const { isConfigSecret } = require("@pulumi/pulumi/runtime/config") as { isConfigSecret(key: string): boolean };
const secretKeys = keys.filter((k) => isConfigSecret(`${project}:${k}`));
const spec = parseClusterConfig(raw, project, { encoded: true, secretKeys });
// Every command renders and fits, or the config is refused here, before anything is registered.
const renderFailures = renderProblems(spec);
if (renderFailures.length > 0) throw new ConfigError(renderFailures);
for (const w of configWarnings(spec)) pulumi.log.warn(w);
// Validated above; from here on the keys only travel as secrets.
const sshKeyText = sshKeys(raw, { encoded: true });
const secretsOf = (byHost: Record<string, string>) => Object.fromEntries(Object.entries(byHost).map(([h, k]) => [h, pulumi.secret(k)]));
// The dashboard certificate's key, when the user supplies one (validated above; a secret, checked above).
const dashboardKey = spec.addons.dashboard.tlsCertificate
    ? (JSON.parse(raw.addons as string) as { dashboard: { tls: { key: string } } }).dashboard.tls.key
    : undefined;
const secrets = {
    ...(sshKeyText.sshPrivateKey !== undefined ? { sshPrivateKey: pulumi.secret(sshKeyText.sshPrivateKey) } : {}),
    hostPrivateKeys: secretsOf(sshKeyText.hostPrivateKeys),
    bastionPrivateKeys: secretsOf(sshKeyText.bastionPrivateKeys),
    ...(dashboardKey !== undefined ? { dashboardTlsKey: pulumi.secret(dashboardKey) } : {}),
};
if (spec.hosts.some((h) => h.useAgent) && pulumi.runtime.isDryRun()) {
    // (at up, the reachability check refuses to start without it)
    const why = agentProblem();
    if (why) pulumi.log.warn(why);
}

const cluster = new Cluster(project, { spec, secrets });

/** Admin kubeconfig (secret): `pulumi stack output kubeconfig --show-secrets > kubeconfig`. */
export const kubeconfig = cluster.kubeconfig;
/** The API server URL written into the kubeconfig. */
export const apiEndpoint = cluster.apiEndpoint;
/** Nodes with their roles and addresses. */
export const nodes = cluster.nodes;
/** Kubeconfig per entry of `users`, by name (secret): `pulumi stack output userKubeconfigs --show-secrets --json | jq -r .jane`. */
export const userKubeconfigs = cluster.userKubeconfigs;
/** Kubernetes version the cluster runs. */
export const kubernetesVersion = spec.kubernetesVersion;
/** Where the ingress controller answers: each ingress node's address with the http and https URLs. */
export const ingressEndpoints = cluster.addons.ingressEndpoints;
/** The dashboard (Headlamp): open it, log in with `dashboardToken`. */
export const dashboardUrl = cluster.addons.dashboardUrl;
/** The dashboard login token (secret): `pulumi stack output dashboardToken --show-secrets`. */
export const dashboardToken = cluster.addons.dashboardToken;
/** The CA that signed the dashboard's certificate (PEM): add it to your browser's or system's trust store. */
export const ingressCaCertificate = cluster.addons.ingressCaCertificate;
