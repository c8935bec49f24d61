/**
 * The shell scripts the program runs on hosts over SSH, and the helpers that
 * turn them into `remote.Command` text.
 *
 * Each step is a real bash file next to this module (`lib.sh` plus
 * `<name>.sh`) so shellcheck and reviewers can read it. The files travel to
 * every host once, as the stdin of that host's first step (`<host>-scripts`),
 * and are installed under `/usr/local/lib/kubeadm-pulumi/<hash>/`, where
 * `<hash>` is the SHA-256 of their text. Every other step's command is then
 * short: three comment lines saying what runs where, a header of
 * shell-quoted variables, and `source` of the installed files. That keeps
 * what `pulumi preview --diff` shows readable (a changed setting is a changed
 * variable line) and keeps a failed step's error short: the command provider
 * repeats the whole command text in its error message.
 *
 * Nothing from the stack config is ever interpreted by a shell (values are
 * single-quoted), and secrets never appear in command text: they arrive on
 * stdin as a bundle made by `encodeBundle` and read by `read_bundle`.
 */
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { USER_NAME } from "../model";

export type ScriptVar = string | number | boolean | readonly string[];
export type ScriptVars = Readonly<Record<string, ScriptVar>>;

/** The steps of the library (`<name>.sh`), each a `main` run through `kp_step`. */
export type ScriptName =
    | "preflight"
    | "prepare"
    | "init"
    | "join"
    | "token"
    | "forget-node"
    | "node-ready"
    | "drain"
    | "reset"
    | "uninstall"
    | "smoke-test"
    | "gateway-api";

/** How a variable is typed and rendered. */
type VarKind = "string" | "int" | "bool" | "array";

const PREPARE_VARS = {
    LOCAL_APT_SOURCE: "string",
    LOCAL_RPM_BASEURL: "string",
    LOCAL_REPO_KEY_URL: "string",
    KUBERNETES_VERSION: "string",
    KUBERNETES_MINOR: "string",
    KUBERNETES_REPO_BASE: "string",
    DOCKER_REPO_BASE: "string",
    CONTAINERD_VERSION: "string",
    CONTAINERD_CONFIG: "string",
    REGISTRY_DIRS: "array",
    REGISTRY_HOSTS_TOML: "array",
    REGISTRY_CAS: "array",
    FIREWALL_PORTS: "array",
    FIREWALL_SOURCES: "array",
    CRICTL_CONFIG: "string",
    PAUSE_IMAGE: "string",
    IMAGE_REPOSITORY: "string",
    IS_CONTROL_PLANE: "bool",
    PROXY_HTTP: "string",
    PROXY_HTTPS: "string",
    NO_PROXY_LIST: "string",
    APT_PROXY_CONF: "string",
    CONTAINERD_PROXY_DROPIN: "string",
    SSH_USER: "string",
    OFFLINE_REPO_DIR: "string",
    OFFLINE_PACKAGES: "string",
    OFFLINE_IMAGES: "array",
} as const satisfies Record<string, VarKind>;

/** The variables each script needs: exactly these, no more, no fewer. */
export const SCRIPT_VARS: Readonly<Record<ScriptName, Readonly<Record<string, VarKind>>>> = {
    preflight: {
        NODE_NAME: "string",
        IS_CONTROL_PLANE: "bool",
        KUBERNETES_MINOR: "string",
        MIN_CPUS: "int",
        MIN_MEMORY_MB: "int",
        PORTS: "array",
        IGNORE: "array",
        SOURCES: "array",
        DISK: "array",
    },
    prepare: PREPARE_VARS,
    init: { NODE_NAME: "string", KUBEADM_CONFIG: "string", API_ENDPOINT: "string" },
    join: { NODE_NAME: "string", IS_CONTROL_PLANE: "bool", JOIN_CONFIG: "string", API_ENDPOINT: "string", TOKEN_STEP: "string" },
    token: { NODE_NAME: "string", TOKEN_TTL_SECONDS: "int" },
    "forget-node": { NODE_NAME: "string" },
    "node-ready": { NODE_NAME: "string", NODE_LABELS: "array", NODE_TAINTS: "array" },
    drain: { NODE_NAME: "string", DRAIN_TIMEOUT_SECONDS: "int" },
    reset: { NODE_NAME: "string" },
    uninstall: { NODE_NAME: "string" },
    "smoke-test": {
        NODES: "array",
        SMOKE_IMAGE: "string",
        DNS_DOMAIN: "string",
        INGRESS_CLASS: "string",
        INGRESS_TARGETS: "array",
        DASHBOARD_HOST: "string",
        CHECK_METRICS: "bool",
        CHECKED: "string",
    },
    "gateway-api": { CRDS_SOURCE: "string", CRDS_VERSION: "string" },
};

export const SCRIPT_NAMES: readonly ScriptName[] = Object.keys(SCRIPT_VARS) as ScriptName[];

/**
 * The files installed on every host: the shared library, the family files
 * prepare.sh sources, and one file per step.
 */
export const LIBRARY_FILES: readonly string[] = [
    "lib.sh",
    "prepare-common.sh",
    "prepare-debian.sh",
    "prepare-rhel.sh",
    ...SCRIPT_NAMES.map((n) => `${n}.sh`),
];

/** Where the step scripts live on a host; one directory per library hash. */
export const LIB_ROOT = "/usr/local/lib/kubeadm-pulumi";

/** Heredoc delimiter of the script inside a command; never a line of a script. */
export const SCRIPT_DELIMITER = "KUBEADM_PULUMI_SCRIPT";

/** The line that starts each file in the library archive. */
const ARCHIVE_FILE_LINE = /^==> ([a-z0-9][a-z0-9.-]*) <==$/;

/**
 * Linux limits one argv string to 128 KiB (MAX_ARG_STRLEN), and both sshd
 * (`$SHELL -c <command>`) and `bash -c <script>` pass the text as one argument.
 */
export const MAX_COMMAND_BYTES = 120 * 1024;

/** Single-quote a string for POSIX shells and bash. */
export function shellQuote(value: string): string {
    return `'${value.replace(/'/g, `'\\''`)}'`;
}

function readScriptFile(file: string): string {
    const text = fs.readFileSync(path.join(__dirname, file), "utf8");
    return text.endsWith("\n") ? text : `${text}\n`;
}

/** The step scripts as installed on a host. */
export interface Library {
    /** File name -> content. */
    files: Readonly<Record<string, string>>;
    /** What the scripts step feeds on stdin: a readable archive of the files. */
    archive: string;
    /** Hex SHA-256 of the archive's file sections (everything after its first line). */
    sha256: string;
    /** The directory the files are installed to: `${LIB_ROOT}/<first 12 hex of sha256>`. */
    dir: string;
}

let cachedLibrary: Library | undefined;

/**
 * The library: every file of LIBRARY_FILES, as an archive of
 * `==> name <==` sections (the format the scripts step's installer reads).
 * Deterministic: the same files give the same hash, so a second `pulumi up`
 * with the same program changes nothing.
 */
export function library(): Library {
    if (cachedLibrary) return cachedLibrary;
    const files: Record<string, string> = {};
    for (const f of LIBRARY_FILES) {
        const text = readScriptFile(f);
        if (text.split("\n").some((l) => ARCHIVE_FILE_LINE.test(l) || l === SCRIPT_DELIMITER)) {
            throw new Error(`components/scripts/${f} contains a line the library archive or command wrapper reserves`);
        }
        files[f] = text;
    }
    const body = LIBRARY_FILES.map((f) => `==> ${f} <==\n${files[f]}`).join("");
    const sha256 = crypto.createHash("sha256").update(body, "utf8").digest("hex");
    const dir = `${LIB_ROOT}/${sha256.slice(0, 12)}`;
    const archive = `# kubeadm-pulumi step scripts ${sha256.slice(0, 12)}: ${LIBRARY_FILES.length} files, installed to ${dir} by the host's scripts step\n${body}`;
    cachedLibrary = { files, archive, sha256, dir };
    return cachedLibrary;
}

function renderVar(script: string, name: string, kind: VarKind, value: ScriptVar): string {
    const bad = (what: string) => new Error(`renderScript(${script}): ${name} ${what}`);
    const checkText = (s: string) => {
        if (s.includes("\0")) throw bad("contains a NUL byte, which a shell variable cannot hold");
        return s;
    };
    switch (kind) {
        case "bool":
            if (typeof value !== "boolean") throw bad(`must be a boolean, got ${JSON.stringify(value)}`);
            return `readonly ${name}=${shellQuote(String(value))}`;
        case "int": {
            const text = typeof value === "number" ? String(value) : value;
            if (
                (typeof value !== "number" && typeof value !== "string") ||
                (typeof value === "number" && !Number.isSafeInteger(value)) ||
                !/^[0-9]+$/.test(String(text))
            ) {
                throw bad(`must be a non-negative integer, got ${JSON.stringify(value)}`);
            }
            return `readonly ${name}=${shellQuote(String(text))}`;
        }
        case "string":
            if (typeof value !== "string") throw bad(`must be a string, got ${JSON.stringify(value)}`);
            return `readonly ${name}=${shellQuote(checkText(value))}`;
        case "array":
            if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) {
                throw bad(`must be an array of strings, got ${JSON.stringify(value)}`);
            }
            return `readonly -a ${name}=(${(value as readonly string[]).map((v) => shellQuote(checkText(v))).join(" ")})`;
    }
}

/** Check `vars` against a script's declaration: exactly the declared names, each of the declared type. */
function checkVars(name: string, spec: Readonly<Record<string, VarKind>>, vars: ScriptVars): void {
    const missing = Object.keys(spec).filter((k) => !Object.prototype.hasOwnProperty.call(vars, k));
    const unknown = Object.keys(vars).filter((k) => !Object.prototype.hasOwnProperty.call(spec, k));
    if (missing.length > 0 || unknown.length > 0) {
        const parts = [];
        if (missing.length > 0) parts.push(`missing var(s) ${missing.sort().join(", ")}`);
        if (unknown.length > 0) parts.push(`unknown var(s) ${unknown.sort().join(", ")}`);
        throw new Error(`renderScript(${name}): ${parts.join("; ")} (expects ${Object.keys(spec).sort().join(", ")})`);
    }
}

/** What a step's command does: run it (no claim), or create/update/delete it with a claim (see lib.sh "step runner and claims"). */
export type StepAction = "run" | "create" | "update" | "delete";

export interface StepScriptOptions {
    /** Where the library is installed (default: `library().dir`; tests point it at a local copy). */
    lib?: string;
    action: StepAction;
    /** The claim's name (the step resource's name); required unless action is "run". */
    claim?: string;
}

const CLAIM_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * The bash script a step runs on its host: `set -euo pipefail`, one
 * `readonly NAME='value'` line per variable (sorted; arrays as
 * `readonly -a NAME=('a' 'b')`, booleans as 'true'/'false'), then `source`
 * of lib.sh and the step's file from the installed library. When the library
 * is missing, a create/update fails with a clear message and a delete has
 * nothing to undo. Deterministic; throws on a missing, unknown or mistyped variable.
 */
export function renderScript(name: ScriptName, vars: ScriptVars, opts: StepScriptOptions = { action: "run" }): string {
    const spec = SCRIPT_VARS[name];
    if (!spec) throw new Error(`renderScript: unknown script '${String(name)}'`);
    checkVars(name, spec, vars);
    if (opts.action !== "run" && !CLAIM_RE.test(opts.claim ?? "")) {
        throw new Error(`renderScript(${name}): action ${opts.action} needs a claim name, got ${JSON.stringify(opts.claim)}`);
    }
    const lib = opts.lib ?? library().dir;
    const header = [
        `readonly KP_LIB=${shellQuote(lib)}`,
        `readonly KP_ACTION=${shellQuote(opts.action)}`,
        ...(opts.claim !== undefined ? [`readonly KP_CLAIM=${shellQuote(opts.claim)}`] : []),
    ];
    const missing =
        opts.action === "delete"
            ? `    printf '%s\\n' "kubeadm-pulumi: the step scripts ($KP_LIB) are not on this host, so none of its steps ran here: nothing to undo" >&2\n    exit 0`
            : `    printf '%s\\n' "kubeadm-pulumi: the step scripts ($KP_LIB) are not on this host: the host's scripts step installs them; run pulumi up again" >&2\n    exit 1`;
    return [
        "#!/usr/bin/env bash",
        "set -euo pipefail",
        "shopt -s inherit_errexit",
        ...header,
        ...Object.keys(vars).sort().map((k) => renderVar(name, k, spec[k], vars[k])),
        `if [[ ! -r $KP_LIB/lib.sh || ! -r $KP_LIB/${name}.sh ]]; then`,
        missing,
        "fi",
        `source "$KP_LIB/lib.sh"`,
        `source "$KP_LIB/${name}.sh"`,
        "",
    ].join("\n");
}

/** Variables of the installer (the scripts step). */
const INSTALL_VARS: Readonly<Record<string, VarKind>> = { NODE_NAME: "string", LIBRARY_SHA256: "string" };

/**
 * The scripts step's script: installs the library read from stdin into its
 * hash directory (verifying the hash), then claims it. Inlined, since it is
 * what puts the library on the host.
 */
export function renderInstallScript(nodeName: string, opts: { action: "create" | "update"; claim: string; lib?: string }): string {
    const lib = library();
    const vars: ScriptVars = { NODE_NAME: nodeName, LIBRARY_SHA256: lib.sha256 };
    checkVars("install-scripts", INSTALL_VARS, vars);
    if (!CLAIM_RE.test(opts.claim)) throw new Error(`renderInstallScript: bad claim name ${JSON.stringify(opts.claim)}`);
    return [
        "#!/usr/bin/env bash",
        "set -euo pipefail",
        "shopt -s inherit_errexit",
        `readonly KP_LIB=${shellQuote(opts.lib ?? lib.dir)}`,
        `readonly KP_ACTION=${shellQuote(opts.action)}`,
        `readonly KP_CLAIM=${shellQuote(opts.claim)}`,
        ...Object.keys(vars).sort().map((k) => renderVar("install-scripts", k, INSTALL_VARS[k], vars[k])),
        readScriptFile("install-scripts.sh").replace(/^# shellcheck shell=bash\n/, ""),
    ].join("\n");
}

const STEP_RE = /^[A-Za-z0-9][A-Za-z0-9._:@-]*$/;

/**
 * The message a non-root step prints when `sudo -n true` fails, followed by
 * what sudo said (which tells a missing password rule, a missing sudo and
 * `Defaults requiretty` apart).
 */
export function sudoMessage(user: string): string {
    const file = user.replace(/[^A-Za-z0-9_-]/g, "_");
    return (
        `user ${user} cannot run sudo without a password on this host: ` +
        `add '${user} ALL=(ALL) NOPASSWD:ALL' to /etc/sudoers.d/${file} (visudo -f /etc/sudoers.d/${file}); ` +
        `if sudo wants a tty, also 'Defaults:${user} !requiretty'`
    );
}

/**
 * Wrap a script as the text of a `remote.Command` create/update/delete, run
 * by the remote user's POSIX login shell. The text starts with `comments`
 * (what runs where: the first lines are all `pulumi preview` shows of a new
 * step), then `bash -c "<script from a quoted heredoc>" <step>`, under
 * `sudo -n` (after a clear check that sudo needs no password) unless the user
 * is root. stdin reaches the script unchanged.
 */
export function remoteCommand(script: string, opts: { user: string; step: string; comments?: readonly string[] }): string {
    const { user, step } = opts;
    if (!USER_NAME.test(user)) throw new Error(`remoteCommand: invalid user name ${JSON.stringify(user)}`);
    if (!STEP_RE.test(step)) throw new Error(`remoteCommand: invalid step name ${JSON.stringify(step)}`);
    if (script.split("\n").some((l) => l === SCRIPT_DELIMITER)) {
        throw new Error(`remoteCommand(${step}): the script contains the heredoc delimiter line ${SCRIPT_DELIMITER}`);
    }
    if (script.includes("\0")) throw new Error(`remoteCommand(${step}): the script contains a NUL byte`);
    const comments = (opts.comments ?? []).map((c) => {
        if (c.includes("\n") || c.includes("\0")) throw new Error(`remoteCommand(${step}): a comment line contains a newline or NUL`);
        return `# ${c}\n`;
    });
    const body = script.endsWith("\n") ? script : `${script}\n`;
    const run = `bash -c "$(cat <<'${SCRIPT_DELIMITER}'\n${body}${SCRIPT_DELIMITER}\n)" ${shellQuote(step)}\n`;
    let command: string;
    if (user === "root") {
        command = run;
    } else {
        // What to change on the host, then what sudo itself said (not installed, a password, requiretty).
        command =
            `if ! kp_sudo=$(sudo -n true 2>&1 </dev/null); then\n` +
            `  printf '%s\\n' ${shellQuote(sudoMessage(user))} "  (sudo -n true said: $kp_sudo)" >&2\n` +
            `  exit 1\n` +
            `fi\n` +
            `sudo -n ${run}`;
    }
    command = comments.join("") + command;
    const bytes = Buffer.byteLength(command, "utf8");
    if (bytes > MAX_COMMAND_BYTES) throw new CommandTooLongError(step, bytes);
    return command;
}

/** A command longer than one argument may be on Linux (the config check reports it with the key that makes it so). */
export class CommandTooLongError extends Error {
    constructor(readonly step: string, readonly bytes: number) {
        super(`remoteCommand(${step}): the command is ${bytes} bytes, over the ${MAX_COMMAND_BYTES}-byte limit of one argument on Linux`);
        this.name = "CommandTooLongError";
    }
}

const BUNDLE_PATH_RE = /^[a-z0-9_-][a-z0-9._-]*(\/[a-z0-9_-][a-z0-9._-]*)*$/;

/**
 * Encode secret files for stdin: one line per file
 * `<relative/path> <base64 of content>`, sorted by path, trailing newline.
 */
export function encodeBundle(files: Readonly<Record<string, string>>): string {
    const paths = Object.keys(files).sort();
    if (paths.length === 0) throw new Error("encodeBundle: no files");
    return paths
        .map((p) => {
            if (!BUNDLE_PATH_RE.test(p) || p.includes("..")) {
                throw new Error(`encodeBundle: invalid path ${JSON.stringify(p)} (allowed: relative [a-z0-9._/-]+ without '..')`);
            }
            const content = files[p];
            if (typeof content !== "string") throw new Error(`encodeBundle: content of ${p} is not a string`);
            return `${p} ${Buffer.from(content, "utf8").toString("base64")}\n`;
        })
        .join("");
}
