import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { HostFacts, checkAgainstEarlier, parseFacts } from "./facts";
import { ClusterSpec, HostSpec, OsFamily, isControlPlane, minorOf } from "./model";
import { renderContainerdConfig, renderCrictlConfig } from "./containerd";
import { ScriptName } from "./scripts";
import { step, StepConnection } from "./step";
import {
    CONTAINERD_VERSION, DOCKER_REPO_BASE, KUBERNETES_REPO_BASE, KubernetesMinor, PAUSE_TAG,
} from "./versions";

/** kubeadm's control-plane minimums (`ControlPlaneNumCPU`, `ControlPlaneMem` in kubeadm constants.go). */
export const CONTROL_PLANE_MIN_CPUS = 2;
export const CONTROL_PLANE_MIN_MEMORY_MB = 1700;

/** TCP ports that must be free: kubeadm's port list (UPSTREAM.md, kubernetes.io "Ports and Protocols"). */
export const CONTROL_PLANE_PORTS = ["6443", "2379", "2380", "10250", "10256", "10257", "10259"];
export const WORKER_PORTS = ["10250", "10256"];

/** Inputs of one host. */
export interface HostArgs {
    spec: ClusterSpec;
    host: HostSpec;
    /** SSH connection to the host (the private key is a secret). */
    connection: StepConnection;
    /** Preflight facts of the hosts listed before this one, for the cross-host checks. */
    earlierFacts: pulumi.Output<HostFacts>[];
}

/**
 * One machine: a read-only preflight that reports every problem at once, then
 * (once no earlier host shares its identity) the idempotent
 * prepare step: swap, kernel modules, sysctls, containerd 2.x, pinned
 * kubelet/kubeadm/kubectl, and the images init or join will need.
 */
export class Host extends pulumi.ComponentResource {
    public readonly preflight: command.remote.Command;
    public readonly prepare: command.remote.Command;
    /** Facts this host's preflight reported. */
    public readonly reportedFacts: pulumi.Output<HostFacts>;
    /** The same facts, released only after the cross-host checks passed. */
    public readonly facts: pulumi.Output<HostFacts>;

    constructor(name: string, args: HostArgs, opts?: pulumi.ComponentResourceOptions) {
        super("kubeadm:index:Host", name, {}, opts);
        const { spec, host, connection } = args;

        this.preflight = step(`${name}-preflight`, {
            connection,
            user: host.user,
            script: "preflight",
            vars: preflightVars(spec, host),
        }, { parent: this });

        this.reportedFacts = this.preflight.stdout.apply((out) => parseFacts(host.name, out));
        this.facts = checkAgainstEarlier(this.reportedFacts, args.earlierFacts);

        this.prepare = step(`${name}-prepare`, {
            connection,
            user: host.user,
            script: this.facts.apply((f) => prepareScript(f.os.family)),
            vars: prepareVars(spec, host),
        }, { parent: this, dependsOn: [this.preflight] });

        this.registerOutputs({ facts: this.facts });
    }
}

/** Variables of the preflight script for one host. */
export function preflightVars(spec: ClusterSpec, host: HostSpec) {
    const cp = isControlPlane(host);
    return {
        NODE_NAME: host.name,
        IS_CONTROL_PLANE: cp,
        KUBERNETES_MINOR: minorOf(spec.kubernetesVersion),
        MIN_CPUS: CONTROL_PLANE_MIN_CPUS,
        MIN_MEMORY_MB: CONTROL_PLANE_MIN_MEMORY_MB,
        PORTS: cp ? CONTROL_PLANE_PORTS : WORKER_PORTS,
        IGNORE: spec.preflight.ignore,
    };
}

/** The prepare variant for an OS family; the `never` check makes a new family a compile error here. */
export function prepareScript(family: OsFamily): ScriptName {
    switch (family) {
        case "debian":
            return "prepare-debian";
        case "rhel":
            return "prepare-rhel";
        default: {
            const unknown: never = family;
            throw new Error(`no prepare script for OS family ${unknown}`);
        }
    }
}

/** The pause image kubeadm of this version expects, under the configured image repository. */
export function pauseImage(spec: ClusterSpec): string {
    return `${spec.kubeadm.imageRepository}/pause:${PAUSE_TAG[minorOf(spec.kubernetesVersion) as KubernetesMinor]}`;
}

/** Variables of the prepare script for one host. */
export function prepareVars(spec: ClusterSpec, host: HostSpec) {
    const local = spec.packages.localRepository;
    const pause = pauseImage(spec);
    return {
        LOCAL_APT_SOURCE: local?.apt ?? "",
        LOCAL_RPM_BASEURL: local?.rpm ?? "",
        LOCAL_REPO_KEY_URL: local?.keyUrl ?? "",
        KUBERNETES_VERSION: spec.kubernetesVersion,
        KUBERNETES_MINOR: minorOf(spec.kubernetesVersion),
        KUBERNETES_REPO_BASE,
        DOCKER_REPO_BASE,
        CONTAINERD_VERSION,
        CONTAINERD_CONFIG: renderContainerdConfig({ pauseImage: pause }),
        CRICTL_CONFIG: renderCrictlConfig(),
        PAUSE_IMAGE: pause,
        IMAGE_REPOSITORY: spec.kubeadm.imageRepository,
        IS_CONTROL_PLANE: isControlPlane(host),
    };
}
