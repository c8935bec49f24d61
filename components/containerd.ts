/**
 * containerd 2.x configuration, built as a typed object and serialised with a
 * TOML library. containerd merges this file over its built-in defaults, so it
 * only states what kubeadm clusters need.
 */
import * as TOML from "smol-toml";
import * as YAML from "yaml";

/** Where per-registry `hosts.toml` files live (registry mirrors). */
export const REGISTRY_CONFIG_PATH = "/etc/containerd/certs.d";
/** containerd's CRI endpoint, as crictl and kubeadm address it. */
export const CONTAINERD_ENDPOINT = "unix:///run/containerd/containerd.sock";

export interface ContainerdConfigArgs {
    /** Full pause image reference kubeadm expects, e.g. `registry.k8s.io/pause:3.10.1`. */
    pauseImage: string;
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
