/**
 * Every remote step the program makes for a validated config, with the exact
 * command texts, in the order they run: what `pulumi preview --diff` would
 * show, computed without Pulumi or any host. The components build the same
 * steps from the same functions (a test checks they agree), so this is also
 * where the entry point checks, before anything is registered, that every
 * command can be rendered and is short enough to run, and reports it as a
 * config problem with a path when not.
 */
import { gatewayApiCall, smokeTestCall } from "./addons";
import { initCall } from "./controlPlane";
import { ConfigProblem } from "./config";
import { preflightCall, prepareCall, targetOf } from "./host";
import { joinCall, nodeCall, tokenCall } from "./join";
import { initHost } from "./kubeadm/config";
import { ClusterSpec, HostSpec, isControlPlane } from "./model";
import { CommandTooLongError, MAX_COMMAND_BYTES, ScriptVars } from "./scripts";
import { ScriptCall, StepCommands, StepTarget, scriptsStepCommands, stepCommands } from "./step";

/** One remote step of the plan. */
export interface PlannedStep {
    /** Resource name (`<host>-<step>`). */
    name: string;
    /** The host the step is about. */
    host: string;
    /** The host the step runs on (the first control plane for token and node steps). */
    target: StepTarget;
    script: string;
    /** Steps that run before (within the plan; the steps of hosts listed earlier are not listed). */
    after: string[];
    /** What the step's stdin carries (never its value). */
    stdin?: string;
    commands: StepCommands;
    call?: ScriptCall & { onDelete?: ScriptCall };
    /** Set instead of `commands` when a command would be longer than one argument may be (bytes). */
    tooLong?: number;
}

function planned(name: string, host: string, target: StepTarget, call: ScriptCall & { onDelete?: ScriptCall }, after: string[], stdin?: string): PlannedStep {
    const step: PlannedStep = { name, host, target, script: call.script, after, stdin, commands: { create: "" }, call };
    try {
        step.commands = stepCommands(name, { target, ...call });
    } catch (e) {
        if (!(e instanceof CommandTooLongError)) throw e;
        step.tooLong = e.bytes;
    }
    return step;
}

/** The steps of `spec`, in the order the program's graph runs them (hosts' own steps first, then init, control-plane joins, workers). */
export function planSteps(spec: ClusterSpec): PlannedStep[] {
    const steps: PlannedStep[] = [];
    const first = initHost(spec);
    const firstTarget = targetOf(first);
    for (const h of spec.hosts) {
        const t = targetOf(h);
        steps.push({ name: `${h.name}-scripts`, host: h.name, target: t, script: "install-scripts", after: [], stdin: "the step scripts (plain text)", commands: scriptsStepCommands(`${h.name}-scripts`, t) });
        steps.push(planned(`${h.name}-preflight`, h.name, t, preflightCall(spec, h), [`${h.name}-scripts`]));
        steps.push(planned(`${h.name}-prepare`, h.name, t, prepareCall(spec, h), [`${h.name}-preflight`]));
    }
    steps.push(planned(`${first.name}-init`, first.name, firstTarget, initCall(spec, first), [`${first.name}-prepare`], "secret: the cluster's CAs and service-account key, the node's kubelet serving certificate and key"));
    steps.push(planned(`${first.name}-node`, first.name, firstTarget, nodeCall(first, false), [`${first.name}-init`]));
    let previous = `${first.name}-init`;
    const join = (h: HostSpec, asCp: boolean) => {
        const token = `${h.name}-token`;
        steps.push(planned(token, h.name, firstTarget, tokenCall(spec, h), [`${first.name}-init`, `${h.name}-prepare`, ...(asCp && previous !== `${first.name}-init` ? [previous] : [])], "secret: the bootstrap token"));
        steps.push(planned(`${h.name}-join`, h.name, targetOf(h), joinCall(spec, h, asCp, token), [`${h.name}-prepare`, token],
            `secret: the bootstrap token, the CA hash and certificate${asCp ? ", the shared CA keys and service-account key" : ""}, the node's kubelet serving certificate and key`));
        steps.push(planned(`${h.name}-node`, h.name, firstTarget, nodeCall(h), [`${h.name}-join`], "the token step's output line"));
        if (asCp) previous = `${h.name}-node`;
    };
    for (const h of spec.hosts.filter((x) => isControlPlane(x) && x.name !== first.name)) join(h, true);
    for (const h of spec.hosts.filter((x) => !isControlPlane(x))) join(h, false);
    // The add-ons' remote steps (the charts and objects go through the Kubernetes provider).
    const joined = steps.filter((s) => s.name.endsWith("-node")).map((s) => s.name);
    const network = spec.network.cni !== "none" ? ["pod network (CNI chart)"] : joined;
    const a = spec.addons;
    if (a.ingress.enabled && a.ingress.gatewayApi) {
        const call = gatewayApiCall(spec);
        steps.push(planned(`${first.name}-gateway-api`, first.name, firstTarget, { script: call.script, what: call.what, vars: call.vars }, [`${first.name}-init`],
            call.stdinFile ? `the Gateway API CRD manifest ${call.stdinFile} (plain text)` : undefined));
    }
    if (a.smokeTest.enabled) {
        const charts = [a.ingress.enabled ? "traefik chart" : "", a.metricsServer.enabled ? "metrics-server chart" : "", a.dashboard.enabled ? "headlamp chart" : ""].filter((x) => x);
        steps.push(planned(`${first.name}-smoke-test`, first.name, firstTarget, smokeTestCall(spec), [...network, ...charts]));
    }
    return steps;
}

/** The config keys behind each script variable, for a message when a command would be too long. */
function pathsOf(spec: ClusterSpec, host: HostSpec, variable: string): string[] {
    const at = `hosts[${spec.hosts.indexOf(host)}]`;
    switch (variable) {
        case "KUBEADM_CONFIG":
        case "JOIN_CONFIG":
            return ["kubeadm.apiServerExtraArgs", "kubeadm.controllerManagerExtraArgs", "kubeadm.schedulerExtraArgs", "kubeadm.kubeletExtraArgs", "kubeadm.kubelet", "apiServer.extraSans", `${at}.taints`];
        case "NODE_LABELS":
            return [`${at}.labels`];
        case "NODE_TAINTS":
            return [`${at}.taints`];
        case "IGNORE":
            return ["preflight.ignore"];
        case "NO_PROXY_LIST":
        case "APT_PROXY_CONF":
        case "CONTAINERD_PROXY_DROPIN":
            return ["proxy.noProxy"];
        case "SOURCES":
            return ["containerd.registries"];
        case "OFFLINE_IMAGES":
            return ["offline.images"];
        default:
            return ["kubeadm", "packages"];
    }
}

/** Size of the config value at `path` (JSON), to name the biggest culprit. */
function sizeAt(spec: ClusterSpec, path: string): number {
    const host = /^hosts\[(\d+)\]\.(labels|taints)$/.exec(path);
    if (host) return JSON.stringify(spec.hosts[Number(host[1])][host[2] as "labels" | "taints"]).length;
    const [section, key] = path.split(".");
    const map: Record<string, unknown> = {
        apiServerExtraArgs: spec.kubeadm.apiServerExtraArgs, controllerManagerExtraArgs: spec.kubeadm.controllerManagerExtraArgs,
        schedulerExtraArgs: spec.kubeadm.schedulerExtraArgs, kubeletExtraArgs: spec.kubeadm.kubeletExtraArgs, kubelet: spec.kubeadm.kubeletConfiguration,
        extraSans: spec.apiServer.extraSans, ignore: spec.preflight.ignore,
    };
    return key && key in map ? JSON.stringify(map[key]).length : section ? 1 : 0;
}

/**
 * Problems that only show once the commands are rendered: a renderer that
 * refuses a value, or a command longer than one argument may be on Linux.
 * Each names the config key that makes it so.
 */
export function renderProblems(spec: ClusterSpec): ConfigProblem[] {
    let steps: PlannedStep[];
    try {
        steps = planSteps(spec);
    } catch (e) {
        return [{ path: "hosts", message: `the program could not render its commands (${(e as Error).message}); this is a bug in kubeadm-pulumi: please report it with your stack config` }];
    }
    const problems: ConfigProblem[] = [];
    for (const s of steps) {
        if (s.tooLong === undefined) continue;
        const host = spec.hosts.find((h) => h.name === s.host)!;
        const vars: ScriptVars = s.call?.vars ?? {};
        const biggest = Object.keys(vars).sort((a, b) => JSON.stringify(vars[b]).length - JSON.stringify(vars[a]).length)[0] ?? "";
        const path = pathsOf(spec, host, biggest).sort((a, b) => sizeAt(spec, b) - sizeAt(spec, a))[0] ?? "kubeadm";
        problems.push({
            path,
            message: `makes the ${s.name} command ${Math.ceil(s.tooLong / 1024)} KiB long, over the ${MAX_COMMAND_BYTES / 1024} KiB one command can be on Linux: shorten it`,
        });
    }
    return problems;
}
