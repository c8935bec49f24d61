/**
 * containerd 2.x configuration, built as a typed object and serialised with a
 * TOML library. containerd merges this file over its built-in defaults, so it
 * only states what kubeadm clusters need.
 */
import * as TOML from "smol-toml";
import * as YAML from "yaml";
import { RegistrySpec } from "./model";

/** Where per-registry `hosts.toml` files live (registry mirrors). */
export const REGISTRY_CONFIG_PATH = "/etc/containerd/certs.d";
/** containerd's CRI endpoint, as crictl and kubeadm address it. */
export const CONTAINERD_ENDPOINT = "unix:///run/containerd/containerd.sock";

export interface ContainerdConfigArgs {
    /** Full pause image reference kubeadm expects, e.g. `registry.k8s.io/pause:3.10.1`. */
    pauseImage: string;
    /** CRI `restrict_oom_score_adj` (hosts that refuse a negative oom_score_adj). */
    restrictOomScoreAdj?: boolean;
}

/**
 * `/etc/containerd/config.toml`, config `version = 3` (containerd 2.x).
 * `SystemdCgroup = true` is written explicitly: containerd 2.1/2.2's
 * `config default` prints no such line, so the usual `sed s/false/true/`
 * silently does nothing (containerd/containerd#12101). Writing the whole file
 * also drops the `disabled_plugins = ["cri"]` that Docker's containerd.io ships.
 */
export function renderContainerdConfig(a: ContainerdConfigArgs): string {
    const config = {
        version: 3,
        plugins: {
            "io.containerd.cri.v1.runtime": {
                ...(a.restrictOomScoreAdj ? { restrict_oom_score_adj: true } : {}),
                containerd: { runtimes: { runc: { runtime_type: "io.containerd.runc.v2", options: { SystemdCgroup: true } } } },
            },
            "io.containerd.cri.v1.images": {
                pinned_images: { sandbox: a.pauseImage },
                registry: { config_path: REGISTRY_CONFIG_PATH },
            },
        },
    };
    return "# Managed by kubeadm-pulumi: changes are overwritten by the next `pulumi up`.\n" + TOML.stringify(config) + "\n";
}

/** `/etc/crictl.yaml`: point crictl at containerd so `crictl` works without flags. */
export function renderCrictlConfig(): string {
    return YAML.stringify({
        "runtime-endpoint": CONTAINERD_ENDPOINT,
        "image-endpoint": CONTAINERD_ENDPOINT,
        timeout: 10,
    });
}

/** One registry's directory under `/etc/containerd/certs.d`. */
export interface RegistryHostsFiles {
    /** Directory name: the registry as images name it (`_default` for all). */
    dir: string;
    /** `hosts.toml`. */
    hostsToml: string;
    /** `ca.crt` beside it ("" when none). */
    ca: string;
}

/**
 * containerd's hosts configuration of one registry (containerd 2.x
 * `core/remotes/docker/config/hosts.go`): `server` is the registry itself,
 * each `[host."<url>"]` a mirror tried first, in order; the CA (written beside
 * it) is trusted for all of them. A mirror URL with a path is used as given
 * (`override_path`).
 */
export function renderRegistryHosts(r: RegistrySpec): RegistryHostsFiles {
    const dir = `${REGISTRY_CONFIG_PATH}/${r.registry}`;
    const trust = { ...(r.ca ? { ca: `${dir}/ca.crt` } : {}), ...(r.skipVerify ? { skip_verify: true } : {}) };
    const hosts: Record<string, Record<string, unknown>> = {};
    for (const m of r.mirrors) {
        hosts[m] = { capabilities: ["pull", "resolve"], ...trust, ...(new URL(m).pathname.replace(/\/+$/, "") ? { override_path: true } : {}) };
    }
    const server = r.registry === "_default" ? undefined : `${r.plainHttp ? "http" : "https"}://${r.registry === "docker.io" ? "registry-1.docker.io" : r.registry}`;
    if (server && r.mirrors.length === 0 && Object.keys(trust).length > 0) hosts[server] = { capabilities: ["pull", "resolve", "push"], ...trust };
    const doc: Record<string, unknown> = { ...(server ? { server } : {}), ...(Object.keys(hosts).length > 0 ? { host: hosts } : {}) };
    return {
        dir: r.registry,
        hostsToml: `# Managed by kubeadm-pulumi (containerd.registries): changes are overwritten by the next \`pulumi up\`.\n${TOML.stringify(doc)}\n`,
        ca: r.ca ?? "",
    };
}
