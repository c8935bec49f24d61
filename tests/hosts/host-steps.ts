/**
 * The command provider's part for one sandbox host's own first steps
 * (scripts, preflight, prepare): each runs over real SSH, as the provider
 * would; every other step of the program is left out (no cluster is made).
 * preflight and prepare have no update command: an update runs create again.
 */
import { CommandCall, providerError } from "../harness";
import { Sandbox, SandboxHost } from "./sandbox";

export interface HostStepRun {
    name: string;
    op: string;
    stdout: string;
    stderr: string;
}

/** An `execute` for runProgram that runs `host`'s scripts/preflight/prepare steps and records each in `ran`. */
export function hostStepsExecutor(sb: () => Sandbox, host: () => SandboxHost, ran: HostStepRun[]) {
    return async (call: CommandCall): Promise<{ stdout: string; stderr: string }> => {
        if (!/-(scripts|preflight|prepare)$/.test(call.name)) return { stdout: "", stderr: "" };
        const r = await sb().ssh(host(), call.connection.user, call.command, call.stdin, 600000);
        ran.push({ name: call.name, op: call.op, stdout: r.stdout, stderr: r.stderr });
        if (r.code !== 0) throw new Error(providerError(call.command, r.code, r.stdout + r.stderr));
        return { stdout: r.stdout, stderr: r.stderr };
    };
}
