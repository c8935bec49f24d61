/**
 * One remote step: a `remote.Command` whose create (and optional delete) text
 * is a rendered script from `scripts/`, run through `sudo -n` for non-root
 * users. Secrets never enter the command text: they arrive on stdin.
 */
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { ScriptName, ScriptVars, remoteCommand, renderScript } from "./scripts";

export type StepConnection = pulumi.Input<command.types.input.remote.ConnectionArgs>;

/** A script and the variables it is rendered with. Variables may be outputs (e.g. a join config that needs the CA hash). */
export interface ScriptCall {
    script: pulumi.Input<ScriptName>;
    vars: pulumi.Input<Record<string, pulumi.Input<ScriptVars[string]>>>;
}

export interface StepArgs extends ScriptCall {
    connection: StepConnection;
    /** SSH user; anything but root runs the script with `sudo -n`. */
    user: string;
    /** What runs when the resource is deleted (teardown), on the same host. */
    onDelete?: ScriptCall;
    /**
     * Secret input for the script (a bundle from `encodeBundle`). When set, the
     * step's stdout/stderr are stored as secrets and stdout is not logged.
     */
    stdin?: pulumi.Output<string>;
}

/** Render a script call into the text `remote.Command` runs. */
export function commandText(call: ScriptCall, user: string, stepName: string): pulumi.Output<string> {
    return pulumi.all([call.script, pulumi.output(call.vars)]).apply(([script, vars]) =>
        remoteCommand(renderScript(script, vars as ScriptVars), { user, step: stepName }));
}

/** Create one remote step. */
export function step(name: string, args: StepArgs, opts: pulumi.CustomResourceOptions): command.remote.Command {
    const hasSecrets = args.stdin !== undefined;
    return new command.remote.Command(name, {
        connection: args.connection,
        create: commandText(args, args.user, name),
        delete: args.onDelete ? commandText(args.onDelete, args.user, `${name}-delete`) : undefined,
        stdin: args.stdin ? pulumi.secret(args.stdin) : undefined,
        // The previous run's output would be passed back in the environment;
        // it is useless here and needs AcceptEnv on the server.
        addPreviousOutputInEnv: false,
        logging: hasSecrets ? "stderr" : "stdoutAndStderr",
    }, {
        ...opts,
        additionalSecretOutputs: hasSecrets ? ["stdout", "stderr"] : undefined,
    });
}
