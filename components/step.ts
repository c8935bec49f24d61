/**
 * One remote step: a `remote.Command` running one of the installed step
 * scripts (see `scripts/index.ts`) on one host, through `sudo -n` for
 * non-root users. Secrets never enter the command text: they arrive on stdin.
 *
 * Replacement safety. A step whose delete undoes something (reset a node,
 * drain it, forget it) gets three commands: `create` runs the script and
 * then claims the step on its host, `update` (any input change) runs it
 * again keeping one claim, and `delete` releases a claim and undoes the step
 * only when no claim is left. Pulumi replaces a resource by creating the new
 * one before deleting the old one (`pulumi up --replace`, changed
 * `triggers`, a provider change): the old delete then finds the new claim
 * and leaves the node alone. Only removing the host from the stack (or
 * `pulumi destroy`) undoes it. No input of any step is a replace-trigger, so
 * no config change replaces a step (the README's "Lifecycle" section).
 */
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { ScriptName, ScriptVars, StepAction, remoteCommand, renderInstallScript, renderScript } from "./scripts";

export type StepConnection = pulumi.Input<command.types.input.remote.ConnectionArgs>;

/**
 * Connection fields the command provider only uses to pace its dial retries
 * (SSH_DIAL_ERROR_LIMIT, SSH_PER_DIAL_TIMEOUT_SECONDS in cluster.ts). Every
 * step ignores changes to them: retuning them is no reason to run a step
 * again, and the values a delete finds in state work as well. Every other
 * connection field stays a real input, because a delete runs with the
 * connection stored in state: a changed host, port, user, key, host key or
 * bastion must reach the state, even though that runs each step's update
 * (pulumi-command 1.2.1 diffs the connection like any input: pulumi-command#447).
 */
export const CONNECTION_IGNORE_CHANGES: readonly string[] = [
    "connection.dialErrorLimit",
    "connection.perDialTimeout",
    "connection.proxy.dialErrorLimit",
    "connection.proxy.perDialTimeout",
];

/** The host a step runs on, for its command text: the comment lines say what runs where (the connection itself is secret in the preview). */
export interface StepTarget {
    /** Node name of the host the step runs on. */
    node: string;
    user: string;
    address: string;
    port: number;
    /** The jump host the step goes through, `user@address:port` (absent: direct). */
    via?: string;
}

/** A script, its variables (all known from the validated config, so every command text is known at preview) and a one-line description. */
export interface ScriptCall {
    script: ScriptName;
    vars: ScriptVars;
    /** What it does, in a few words, for the command's comment lines. */
    what: string;
}

export interface StepArgs extends ScriptCall {
    connection: StepConnection;
    target: StepTarget;
    /** What runs when the step is deleted (its host left the stack, or destroy), on the same host; claim-guarded. */
    onDelete?: ScriptCall;
    /**
     * Input for the script on stdin. Secret bundles (from `encodeBundle`) make
     * the step's stdout/stderr secret in the state too.
     */
    stdin?: pulumi.Input<string>;
    /** stdin carries secrets. */
    secretStdin?: boolean;
}

/** `user@address:port` (IPv6 bracketed) of a target, and ` via user@bastion:port` when it is reached through one. */
export function where(t: StepTarget): string {
    return `${sshEndpoint(t.user, t.address, t.port)}${t.via ? ` via ${t.via}` : ""}`;
}

/** `user@address:port`, IPv6 bracketed. */
export function sshEndpoint(user: string, address: string, port: number): string {
    return `${user}@${address.includes(":") ? `[${address}]` : address}:${port}`;
}

/** The comment lines at the top of a step's create/update text: what runs where, and what deleting it does. */
export function stepComments(name: string, call: ScriptCall, target: StepTarget, onDelete?: ScriptCall): string[] {
    // The node whose leaving deletes the step: the one its undo is for (a worker's
    // token and node steps run on the first control plane, but belong to the worker).
    const owner = typeof onDelete?.vars.NODE_NAME === "string" ? onDelete.vars.NODE_NAME : target.node;
    return [
        `kubeadm-pulumi step ${name}: ${call.script} on ${target.node} (${where(target)})`,
        call.what,
        onDelete
            ? `deleting this step (${owner} leaves the stack, or pulumi destroy): ${onDelete.script}: ${onDelete.what}`
            : `deleting this step changes nothing on ${target.node}`,
    ];
}

function deleteComments(name: string, call: ScriptCall, target: StepTarget): string[] {
    return [
        `kubeadm-pulumi undo of step ${name}: ${call.script} on ${target.node} (${where(target)})`,
        call.what,
        `runs when the step is deleted; a no-op while a replacement of ${name} is live on ${target.node} (its claim)`,
    ];
}

/** The create, update and delete texts of a step. */
export interface StepCommands {
    create: string;
    update?: string;
    delete?: string;
}

/** Render the command texts of a step (pure: the graph tests and `npm run plan` call it too). */
export function stepCommands(name: string, args: Omit<StepArgs, "connection" | "stdin" | "secretStdin">): StepCommands {
    const { target } = args;
    const text = (call: ScriptCall, action: StepAction, comments: string[]) =>
        remoteCommand(renderScript(call.script, call.vars, { action, claim: action === "run" ? undefined : name }), {
            user: target.user,
            step: name,
            comments,
        });
    const comments = stepComments(name, args, target, args.onDelete);
    if (!args.onDelete) return { create: text(args, "run", comments) };
    return {
        create: text(args, "create", comments),
        update: text(args, "update", comments),
        delete: text(args.onDelete, "delete", deleteComments(name, args.onDelete, target)),
    };
}

function commandResource(
    name: string,
    commands: StepCommands,
    args: { connection: StepConnection; stdin?: pulumi.Input<string>; secretStdin?: boolean },
    opts: pulumi.CustomResourceOptions,
): command.remote.Command {
    const secret = args.secretStdin === true;
    return new command.remote.Command(name, {
        connection: args.connection,
        create: commands.create,
        update: commands.update,
        delete: commands.delete,
        stdin: args.stdin === undefined ? undefined : secret ? pulumi.secret(args.stdin) : args.stdin,
        // The previous run's output would be passed back in the environment;
        // it is useless here and needs AcceptEnv on the server.
        addPreviousOutputInEnv: false,
        // Scripts never print secrets: their summary (stdout) and progress
        // (stderr) are shown; the state keeps them secret where stdin was.
        logging: "stdoutAndStderr",
    }, {
        ...opts,
        additionalSecretOutputs: secret ? ["stdout", "stderr"] : undefined,
        // Retuned dial retries are no reason to run a step again (cluster.ts CONNECTION_IGNORE_CHANGES).
        ignoreChanges: [...CONNECTION_IGNORE_CHANGES, ...(opts.ignoreChanges ?? [])],
    });
}

/** Create one remote step. */
export function step(name: string, args: StepArgs, opts: pulumi.CustomResourceOptions): command.remote.Command {
    return commandResource(name, stepCommands(name, args), args, opts);
}

/** What the scripts step does, for its comment lines. */
export const SCRIPTS_WHAT = "install the step scripts (this step's stdin) that every other step on this host runs";
const UNINSTALL_WHAT = "remove the step scripts and kubeadm-pulumi's state and logs (last step undone on the host)";

/** The command texts of a host's scripts step (pure). */
export function scriptsStepCommands(name: string, target: StepTarget): StepCommands {
    const comments = (action: string) => [
        `kubeadm-pulumi step ${name}: ${action} on ${target.node} (${where(target)})`,
        SCRIPTS_WHAT,
        `deleting this step (${target.node} leaves the stack, or pulumi destroy): uninstall: ${UNINSTALL_WHAT}`,
    ];
    const install = (action: "create" | "update") =>
        remoteCommand(renderInstallScript(target.node, { action, claim: name }), { user: target.user, step: name, comments: comments("install-scripts") });
    const uninstall: ScriptCall = { script: "uninstall", vars: { NODE_NAME: target.node }, what: UNINSTALL_WHAT };
    return {
        create: install("create"),
        update: install("update"),
        delete: remoteCommand(renderScript("uninstall", uninstall.vars, { action: "delete", claim: name }), {
            user: target.user,
            step: name,
            comments: deleteComments(name, uninstall, target),
        }),
    };
}

/** The first step on every host: install the step scripts (`archive` on stdin). */
export function scriptsStep(
    name: string,
    args: { connection: StepConnection; target: StepTarget; archive: string },
    opts: pulumi.CustomResourceOptions,
): command.remote.Command {
    return commandResource(name, scriptsStepCommands(name, args.target), { connection: args.connection, stdin: args.archive }, opts);
}
