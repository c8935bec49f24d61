/**
 * The first run without a Pulumi Cloud account: what `npm run up`, `preview`,
 * `destroy`, `kubeconfig` and `pulumi` do before the Pulumi CLI runs
 * (docs/environments.md):
 *
 * 1. choose the state backend: PULUMI_BACKEND_URL if set; else the
 *    project-local `file://<repo>/.pulumi-state` if it already holds state
 *    (an earlier run chose it: switching away would lose the stacks); else
 *    the backend `pulumi whoami` reports (the user logged in somewhere);
 *    else a new project-local file backend. The choice only goes into the
 *    child's PULUMI_BACKEND_URL: the user's global `pulumi login` is never
 *    changed;
 * 2. make sure a passphrase is available (PULUMI_CONFIG_PASSPHRASE or
 *    PULUMI_CONFIG_PASSPHRASE_FILE) where the stack's secrets need one, and
 *    say how to set it when not, without ever reading or printing it;
 * 3. select the stack (`--stack`, PULUMI_STACK, default `dev`), creating it
 *    with the passphrase secrets provider where that makes sense;
 * 4. run the Pulumi command with the user's arguments passed through, or, for
 *    `kubeconfig`, write the stack's kubeconfig output to a file created with
 *    mode 0600 (never on stdout).
 */
import { spawn, spawnSync, SpawnSyncReturns } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";

export const DEFAULT_STACK = "dev";
export const STATE_DIR = ".pulumi-state";
export const DEFAULT_KUBECONFIG = "kubeconfig";

/** Where the wrapper runs and what it sees; tests substitute every part. */
export interface CliContext {
    /** The Pulumi project directory (Pulumi.yaml). */
    root: string;
    env: NodeJS.ProcessEnv;
    /** Directory relative paths given by the user are relative to (npm's INIT_CWD). */
    cwd: string;
    out: (line: string) => void;
    err: (line: string) => void;
}

export class CliError extends Error {
    constructor(message: string, readonly exitCode = 2) {
        super(message);
    }
}

/** Commands that neither need a stack nor a passphrase. `stack ...` manages stacks itself. */
const NO_STACK = new Set(["login", "logout", "whoami", "version", "about", "plugin", "help", "new", "install", "gen-completion", "stack", "--help", "-h", "--version"]);
/** Commands that may create the stack when it does not exist. Everything else needs it to exist. */
const MAY_CREATE = new Set(["up", "update", "preview", "pre", "config"]);
/** Commands this wrapper adds `--stack` to (they all accept it). */
const TAKES_STACK = new Set(["up", "update", "preview", "pre", "destroy", "refresh"]);

/** The Pulumi CLI to run: one on PATH (npm's node_modules/.bin entries aside), else the `pulumi` devDependency. */
export function findPulumi(ctx: CliContext): { path: string; fromNpm: boolean } {
    for (const dir of (ctx.env["PATH"] ?? "").split(path.delimiter)) {
        if (!dir || /node_modules[\\/]\.bin[\\/]?$/.test(dir)) continue;
        const candidate = path.join(dir, "pulumi");
        try {
            fs.accessSync(candidate, fs.constants.X_OK);
            if (fs.statSync(candidate).isFile()) return { path: candidate, fromNpm: false };
        } catch {
            // not here
        }
    }
    const local = path.join(ctx.root, "node_modules", ".bin", "pulumi");
    if (fs.existsSync(local)) return { path: local, fromNpm: true };
    throw new CliError(
        [
            "No Pulumi CLI found: run `npm ci` (it installs the `pulumi` devDependency, which downloads the CLI on first use and",
            "needs internet access for that), or install the CLI and put it on your PATH: https://www.pulumi.com/docs/install/",
        ].join("\n"),
    );
}

/** A backend URL fit to print: no user info, no query string. */
export function showUrl(url: string): string {
    const m = /^([a-z][a-z0-9+.-]*:\/\/)(?:[^@/]*@)?([^?#]*)([?#].*)?$/i.exec(url);
    if (!m) return url.replace(/[?#].*$/, "");
    return `${m[1]}${m[2]}${m[3] ? "?…" : ""}`;
}

export interface Backend {
    url?: string;
    /** Why this backend: printed on every run. */
    why: string;
    /** Self-managed (file, s3, gs, azblob, postgres...): secrets need a passphrase or a KMS; Pulumi Cloud has its own. */
    selfManaged: boolean;
    /** Set PULUMI_BACKEND_URL in the child's environment (the wrapper chose it). */
    setEnv: boolean;
}

const isSelfManaged = (url: string | undefined) => url !== undefined && !/^https?:\/\//i.test(url);

/** Step 1: choose the state backend. */
export function chooseBackend(ctx: CliContext, pulumi: string, fromNpm: boolean): Backend {
    const fromEnv = ctx.env["PULUMI_BACKEND_URL"];
    if (fromEnv) return { url: fromEnv, why: "PULUMI_BACKEND_URL is set", selfManaged: isSelfManaged(fromEnv), setEnv: false };
    const stateDir = path.join(ctx.root, STATE_DIR);
    const local = `file://${stateDir}`;
    if (fs.existsSync(path.join(stateDir, ".pulumi"))) {
        return { url: local, why: `the project-local state in ${STATE_DIR}/ from an earlier run; set PULUMI_BACKEND_URL to use another backend`, selfManaged: true, setEnv: true };
    }
    const who = spawnSync(pulumi, ["whoami", "--json", "--non-interactive"], { cwd: ctx.root, env: ctx.env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 60_000 });
    if (who.error) throw new CliError(`could not run ${pulumi}: ${who.error.message}`);
    if (who.status === 0) {
        let url: string | undefined;
        try {
            url = (JSON.parse(who.stdout) as { url?: string }).url;
        } catch {
            url = undefined;
        }
        return { url, why: "you are logged in to it, says `pulumi whoami`; set PULUMI_BACKEND_URL to use another backend", selfManaged: isSelfManaged(url), setEnv: false };
    }
    if (fromNpm && /fetch failed/i.test(who.stderr)) {
        throw new CliError(
            [
                "The Pulumi CLI could not be downloaded (`pulumi: fetch failed`): the `pulumi` devDependency downloads it on first use,",
                "which needs internet access. Install the Pulumi CLI and put it on your PATH instead (README, Quick start).",
            ].join("\n"),
        );
    }
    fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    return { url: local, why: `no backend chosen yet: PULUMI_BACKEND_URL is unset and you are not logged in, so a project-local file backend in ${STATE_DIR}/, git-ignored`, selfManaged: true, setEnv: true };
}

/** The stack named by `--stack X`, `--stack=X` or `-s X` in `args`, by npm's `--stack=X` (npm_config_stack), PULUMI_STACK, or the default. */
export function chooseStack(args: string[], env: NodeJS.ProcessEnv): { stack: string; fromArgs: boolean } {
    for (let i = 0; i < args.length; i++) {
        const a = args[i];
        if (a === "--") break;
        if ((a === "--stack" || a === "-s") && i + 1 < args.length) return { stack: checkStackName(args[i + 1]), fromArgs: true };
        if (a.startsWith("--stack=")) return { stack: checkStackName(a.slice("--stack=".length)), fromArgs: true };
    }
    const npm = env["npm_config_stack"];
    if (npm === "true" || npm === "") {
        throw new CliError("npm took `--stack` for itself: put the wrapper's arguments after `--`, e.g. `npm run up -- --stack prod` (or set PULUMI_STACK=prod)");
    }
    if (npm) return { stack: checkStackName(npm), fromArgs: false };
    return { stack: checkStackName(env["PULUMI_STACK"] || DEFAULT_STACK), fromArgs: false };
}

function checkStackName(s: string): string {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*(\/[A-Za-z0-9][A-Za-z0-9_.-]*){0,2}$/.test(s)) {
        throw new CliError(`${JSON.stringify(s)} is not a stack name: letters, digits, "-", "_" and "." (optionally org/project/stack)`);
    }
    return s;
}

/** The secrets provider Pulumi.<stack>.yaml records, if any (`passphrase` when it has an encryptionsalt). */
export function stackSecretsProvider(root: string, stack: string): string | undefined {
    const file = path.join(root, `Pulumi.${stack.split("/").pop()}.yaml`);
    if (!fs.existsSync(file)) return undefined;
    const text = fs.readFileSync(file, "utf8");
    const provider = /^secretsprovider:\s*["']?([^"'\s]+)/m.exec(text)?.[1];
    if (provider) return provider;
    return /^encryptionsalt:/m.test(text) ? "passphrase" : undefined;
}

/** Step 2: a passphrase is needed and available, or a CliError saying how to set one. Never reads or prints it. */
export function checkPassphrase(ctx: CliContext, backend: Backend, stack: string): void {
    const provider = stackSecretsProvider(ctx.root, stack);
    const needed = provider !== undefined ? provider.startsWith("passphrase") : backend.selfManaged;
    if (!needed) return;
    const file = ctx.env["PULUMI_CONFIG_PASSPHRASE_FILE"];
    if (ctx.env["PULUMI_CONFIG_PASSPHRASE"] !== undefined) {
        if (ctx.env["PULUMI_CONFIG_PASSPHRASE"] === "") ctx.err("warning: PULUMI_CONFIG_PASSPHRASE is empty: the stack's secrets are encrypted with an empty passphrase");
        return;
    }
    if (file) {
        const resolved = path.resolve(ctx.cwd, file);
        let st: fs.Stats;
        try {
            st = fs.statSync(resolved);
            fs.accessSync(resolved, fs.constants.R_OK);
        } catch {
            throw new CliError(`PULUMI_CONFIG_PASSPHRASE_FILE names ${resolved}, which does not exist or cannot be read: create it (see docs/environments.md) or point the variable at the right file`);
        }
        if (!st.isFile() || st.size === 0) throw new CliError(`PULUMI_CONFIG_PASSPHRASE_FILE names ${resolved}, which is empty or not a file: put the passphrase in it`);
        if ((st.mode & 0o077) !== 0) ctx.err(`warning: ${resolved} (the passphrase file) can be read by other users: chmod 600 ${resolved}`);
        return;
    }
    throw new CliError(
        [
            `Stack ${JSON.stringify(stack)} needs a passphrase: Pulumi encrypts its secrets (ssh.privateKey in Pulumi.${stack.split("/").pop()}.yaml, the`,
            `cluster's CA keys and the kubeconfig in the state) with a key derived from it${backend.url ? `, and the backend (${showUrl(backend.url)}) has no key service` : ""}.`,
            "Set one of these in your shell, then run the command again:",
            "",
            "  # a file only you can read, outside the repository (recommended):",
            "  mkdir -p ~/.config/kubeadm-pulumi && (umask 077; openssl rand -base64 32 > ~/.config/kubeadm-pulumi/passphrase)",
            "  export PULUMI_CONFIG_PASSPHRASE_FILE=~/.config/kubeadm-pulumi/passphrase",
            "",
            "  # or typed in, so it lands in no file and no shell history:",
            "  read -rs PULUMI_CONFIG_PASSPHRASE && export PULUMI_CONFIG_PASSPHRASE",
            "",
            "Keep the passphrase out of git and somewhere safe (a password manager): without it the stack's secrets cannot be",
            "read again. docs/environments.md has the details.",
        ].join("\n"),
    );
}

function run(pulumi: string, args: string[], ctx: CliContext, env: NodeJS.ProcessEnv): SpawnSyncReturns<string> {
    const r = spawnSync(pulumi, args, { cwd: ctx.root, env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 120_000 });
    if (r.error) throw new CliError(`could not run ${pulumi} ${args[0]}: ${r.error.message}`);
    return r;
}

/** Step 3: select the stack, creating it when `create` allows. */
export function ensureStack(ctx: CliContext, pulumi: string, env: NodeJS.ProcessEnv, backend: Backend, stack: string, create: boolean): "selected" | "created" {
    const sel = run(pulumi, ["stack", "select", stack, "--non-interactive"], ctx, env);
    if (sel.status === 0) return "selected";
    if (!/no stack named/i.test(sel.stderr)) {
        throw new CliError(`pulumi stack select ${stack} failed:\n${sel.stderr.trim()}`, sel.status ?? 1);
    }
    if (!create) {
        throw new CliError(`There is no stack ${JSON.stringify(stack)} in ${backend.url ? showUrl(backend.url) : "the current backend"}: nothing to do. \`npm run preview -- --stack ${stack}\` creates it.`);
    }
    const provider = stackSecretsProvider(ctx.root, stack);
    const initArgs = ["stack", "init", stack, "--non-interactive"];
    if (provider === undefined && backend.selfManaged) initArgs.push("--secrets-provider", "passphrase");
    const init = run(pulumi, initArgs, ctx, env);
    if (init.status !== 0) throw new CliError(`pulumi ${initArgs.join(" ")} failed:\n${init.stderr.trim()}`, init.status ?? 1);
    return "created";
}

/** Everything before the command: the CLI, the backend, the stack, the passphrase, the child's environment. */
export function prepare(ctx: CliContext, command: string, args: string[]) {
    const { path: pulumi, fromNpm } = findPulumi(ctx);
    const backend = chooseBackend(ctx, pulumi, fromNpm);
    const env: NodeJS.ProcessEnv = { ...ctx.env };
    if (backend.setEnv && backend.url) env["PULUMI_BACKEND_URL"] = backend.url;
    ctx.err(`backend: ${backend.url ? showUrl(backend.url) : "the one you are logged in to"} (${backend.why})`);
    if (NO_STACK.has(command)) return { pulumi, env, backend, stack: undefined };
    const { stack, fromArgs } = chooseStack(args, ctx.env);
    checkPassphrase(ctx, backend, stack);
    const create = command !== "kubeconfig" && MAY_CREATE.has(command);
    const how = ensureStack(ctx, pulumi, env, backend, stack, create);
    if (how === "created") {
        ctx.err(`stack: ${stack} (created${stackSecretsProvider(ctx.root, stack) === "passphrase" ? " with the passphrase secrets provider: commit its encryptionsalt line in" : "; its config is in"} Pulumi.${stack.split("/").pop()}.yaml)`);
    } else {
        ctx.err(`stack: ${stack}`);
    }
    return { pulumi, env, backend, stack, fromArgs };
}

/** Step 4 for `kubeconfig`: the stack's kubeconfig output into `target`, created with mode 0600, never printed. */
export function writeKubeconfig(ctx: CliContext, pulumi: string, env: NodeJS.ProcessEnv, stack: string, target: string): string {
    const r = spawnSync(pulumi, ["stack", "output", "kubeconfig", "--show-secrets", "--stack", stack, "--non-interactive"], {
        cwd: ctx.root,
        env,
        encoding: "utf8",
        // stdout is the secret: captured, never passed on; stderr is Pulumi's messages.
        stdio: ["ignore", "pipe", "pipe"],
        maxBuffer: 16 * 1024 * 1024,
        timeout: 120_000,
    });
    if (r.error) throw new CliError(`could not run ${pulumi} stack output: ${r.error.message}`);
    if (r.status !== 0 && /does not have output property/.test(r.stderr)) {
        throw new CliError(`Stack ${JSON.stringify(stack)} has no kubeconfig output yet: run \`npm run up -- --stack ${stack}\` first`);
    }
    if (r.status !== 0) throw new CliError(`pulumi stack output kubeconfig failed:\n${r.stderr.trim()}`, r.status ?? 1);
    // `pulumi stack output` prints the value plus a newline of its own.
    const kubeconfig = r.stdout.replace(/\n+$/, "\n");
    if (!/^apiVersion:/m.test(kubeconfig) || !/^clusters:/m.test(kubeconfig)) {
        throw new CliError(`Stack ${JSON.stringify(stack)} has no kubeconfig output yet (its content is not shown): run \`npm run up -- --stack ${stack}\` first`);
    }
    const file = path.resolve(ctx.cwd, target);
    const dir = path.dirname(file);
    if (!fs.existsSync(dir)) throw new CliError(`${dir} does not exist: create it first, or choose another path`);
    if (fs.existsSync(file) && fs.statSync(file).isDirectory()) throw new CliError(`${file} is a directory: give a file path, e.g. ${path.join(target, DEFAULT_KUBECONFIG)}`);
    // A new file with mode 0600 from the start (the umask can only remove bits), renamed over the target:
    // never readable by others, not even while it is written, and never half-written.
    const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${crypto.randomBytes(6).toString("hex")}.tmp`);
    let fd: number | undefined;
    try {
        fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
        fs.fchmodSync(fd, 0o600);
        fs.writeSync(fd, kubeconfig);
        fs.fsyncSync(fd);
        fs.closeSync(fd);
        fd = undefined;
        fs.renameSync(tmp, file);
    } catch (e) {
        if (fd !== undefined) fs.closeSync(fd);
        fs.rmSync(tmp, { force: true });
        throw new CliError(`could not write ${file}: ${(e as Error).message}`);
    }
    return file;
}

/** Parse `kubeconfig [PATH | --out PATH] [--stack X]`. */
export function kubeconfigTarget(args: string[]): string {
    const rest: string[] = [];
    for (let i = 0; i < args.length; i++) {
        const a = args[i];
        if (a === "--stack" || a === "-s") {
            i++;
        } else if (a.startsWith("--stack=")) {
            continue;
        } else if (a === "--out" || a === "-o") {
            if (i + 1 >= args.length) throw new CliError(`${a} needs a path`);
            return args[i + 1];
        } else if (a.startsWith("--out=")) {
            return a.slice("--out=".length);
        } else if (a.startsWith("-")) {
            throw new CliError(`npm run kubeconfig: unknown option ${a} (usage: npm run kubeconfig -- [PATH] [--stack NAME]; PATH defaults to ./${DEFAULT_KUBECONFIG})`);
        } else {
            rest.push(a);
        }
    }
    if (rest.length > 1) throw new CliError(`npm run kubeconfig: one path only, got ${rest.length}`);
    return rest[0] ?? DEFAULT_KUBECONFIG;
}

/**
 * The whole wrapper: `args` is `<command> [args...]`, as npm passes them
 * (`npm run up -- --yes` gives `up --yes`). Resolves to the exit code.
 */
export async function main(args: string[], ctx: CliContext): Promise<number> {
    try {
        const [command, ...rest] = args;
        if (!command) throw new CliError("usage: npm run up|preview|destroy|kubeconfig -- [--stack NAME] [pulumi arguments...], or npm run pulumi -- <any pulumi command>");
        const kubeTarget = command === "kubeconfig" ? kubeconfigTarget(rest) : undefined;
        const prep = prepare(ctx, command, rest);
        if (command === "kubeconfig") {
            const file = writeKubeconfig(ctx, prep.pulumi, prep.env, prep.stack!, kubeTarget!);
            const shown = path.relative(ctx.cwd, file) || file;
            ctx.out(`wrote the kubeconfig of stack ${prep.stack} to ${file} (mode 0600; a cluster-admin credential: keep it private)`);
            ctx.out(`  kubectl --kubeconfig ${shown.startsWith("..") || path.isAbsolute(shown) ? file : `./${shown}`} get nodes`);
            return 0;
        }
        const childArgs = [command, ...rest];
        if (prep.stack && !prep.fromArgs && TAKES_STACK.has(command)) childArgs.push("--stack", prep.stack);
        return await runInherited(prep.pulumi, childArgs, ctx.root, prep.env);
    } catch (e) {
        if (e instanceof CliError) {
            ctx.err(e.message);
            return e.exitCode;
        }
        throw e;
    }
}

/**
 * Run the command with the terminal. Ctrl-C reaches Pulumi from the terminal
 * (same process group) and Pulumi cancels cleanly: the wrapper ignores it and
 * waits. A SIGTERM or SIGHUP sent to the wrapper alone is passed on.
 */
function runInherited(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<number> {
    return new Promise((resolve) => {
        const child = spawn(cmd, args, { cwd, env, stdio: "inherit" });
        const ignore = () => undefined;
        const forward = (signal: NodeJS.Signals) => child.kill(signal);
        process.on("SIGINT", ignore);
        process.on("SIGTERM", forward);
        process.on("SIGHUP", forward);
        const done = (code: number) => {
            process.off("SIGINT", ignore);
            process.off("SIGTERM", forward);
            process.off("SIGHUP", forward);
            resolve(code);
        };
        child.on("error", (e) => {
            process.stderr.write(`could not run ${cmd}: ${e.message}\n`);
            done(127);
        });
        child.on("exit", (code, signal) => done(code ?? 128 + (signal ? (SIGNAL_NUMBERS[signal] ?? 1) : 1)));
    });
}

const SIGNAL_NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 };
