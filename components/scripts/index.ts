/**
 * The shell scripts the program runs on hosts over SSH, and the helpers that
 * turn them into `remote.Command` text.
 *
 * Each step is a real bash file next to this module (`lib.sh` plus
 * `<name>.sh`) so shellcheck and reviewers can read it. `renderScript` puts a
 * generated header in front: `set -euo pipefail` and one `readonly` line per
 * variable, with values single-quoted, so nothing from the stack config is ever
 * interpreted by a shell. Secrets never appear in scripts: they arrive on stdin
 * as a bundle made by `encodeBundle` and read by `read_bundle` in lib.sh.
 */
import * as fs from "fs";
import * as path from "path";

export type ScriptVar = string | number | boolean | readonly string[];
export type ScriptVars = Readonly<Record<string, ScriptVar>>;
export type ScriptName =
    | "preflight"
    | "prepare-debian"
    | "prepare-rhel"
    | "init"
    | "join"
    | "token"
    | "forget-node"
    | "node-ready"
    | "drain"
    | "reset";

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
    CRICTL_CONFIG: "string",
    PAUSE_IMAGE: "string",
    IMAGE_REPOSITORY: "string",
    IS_CONTROL_PLANE: "bool",
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
    },
    "prepare-debian": PREPARE_VARS,
    "prepare-rhel": PREPARE_VARS,
    init: { NODE_NAME: "string", KUBEADM_CONFIG: "string", API_ENDPOINT: "string" },
    join: { NODE_NAME: "string", IS_CONTROL_PLANE: "bool", JOIN_CONFIG: "string", TOKEN_TTL_SECONDS: "int" },
    token: { TOKEN_ID: "string", TOKEN_TTL_SECONDS: "int", NODE_NAME: "string" },
    "forget-node": { NODE_NAME: "string", TOKEN_ID: "string" },
    "node-ready": { NODE_NAME: "string", NODE_LABELS: "array", TOKEN_ID: "string" },
    drain: { NODE_NAME: "string", DRAIN_TIMEOUT_SECONDS: "int" },
    reset: { NODE_NAME: "string" },
};

export const SCRIPT_NAMES: readonly ScriptName[] = Object.keys(SCRIPT_VARS) as ScriptName[];

/** Heredoc delimiter used by `remoteCommand`. */
export const SCRIPT_DELIMITER = "KUBEADM_PULUMI_SCRIPT";

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
    // Drop the leading `# shellcheck ...` directives: they are for reading the
    // file on its own and would be misplaced in the middle of the rendered script.
    const lines = text.split("\n");
    let i = 0;
    while (i < lines.length && /^# shellcheck /.test(lines[i])) i++;
    const body = lines.slice(i).join("\n");
    return body.endsWith("\n") ? body : `${body}\n`;
}

function renderVar(script: ScriptName, name: string, kind: VarKind, value: ScriptVar): string {
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

/**
 * Header (shebang, `set -euo pipefail`, never `set -x`) + one
 * `readonly NAME='shell-quoted value'` line per var in sorted order (arrays as
 * `readonly -a NAME=('a' 'b')`, booleans as 'true'/'false') + lib.sh (+
 * prepare-common.sh for the two prepare scripts) + the body `<name>.sh`. Deterministic. Throws on a missing, unknown or mistyped var.
 */
export function renderScript(name: ScriptName, vars: ScriptVars): string {
    const spec = SCRIPT_VARS[name];
    if (!spec) throw new Error(`renderScript: unknown script '${String(name)}'`);
    const missing = Object.keys(spec).filter((k) => !Object.prototype.hasOwnProperty.call(vars, k));
    const unknown = Object.keys(vars).filter((k) => !Object.prototype.hasOwnProperty.call(spec, k));
    if (missing.length > 0 || unknown.length > 0) {
        const parts = [];
        if (missing.length > 0) parts.push(`missing var(s) ${missing.sort().join(", ")}`);
        if (unknown.length > 0) parts.push(`unknown var(s) ${unknown.sort().join(", ")}`);
        throw new Error(`renderScript(${name}): ${parts.join("; ")} (expects ${Object.keys(spec).sort().join(", ")})`);
    }
    const lines = [
        "#!/usr/bin/env bash",
        `# kubeadm-pulumi step '${name}', generated from components/scripts/lib.sh and ${name}.sh; do not edit.`,
        "set -euo pipefail",
        "shopt -s inherit_errexit",
        ...Object.keys(vars)
            .sort()
            .map((k) => renderVar(name, k, spec[k], vars[k])),
        "",
    ];
    const parts = [lines.join("\n"), readScriptFile("lib.sh")];
    if (name === "prepare-debian" || name === "prepare-rhel") parts.push(readScriptFile("prepare-common.sh"));
    parts.push(readScriptFile(`${name}.sh`));
    return parts.join("\n");
}

const STEP_RE = /^[A-Za-z0-9][A-Za-z0-9._:@-]*$/;
const USER_RE = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/**
 * Wrap a rendered script as the text of a `remote.Command` create/delete, run
 * by the remote user's POSIX login shell: `bash -c "<script from a quoted
 * heredoc>" <step>`, under `sudo -n` (after a clear check that sudo needs no
 * password) unless the user is root. stdin reaches the script unchanged.
 */
export function remoteCommand(script: string, opts: { user: string; step: string }): string {
    const { user, step } = opts;
    if (!USER_RE.test(user)) throw new Error(`remoteCommand: invalid user name ${JSON.stringify(user)}`);
    if (!STEP_RE.test(step)) throw new Error(`remoteCommand: invalid step name ${JSON.stringify(step)}`);
    if (script.split("\n").some((l) => l === SCRIPT_DELIMITER)) {
        throw new Error(`remoteCommand(${step}): the script contains the heredoc delimiter line ${SCRIPT_DELIMITER}`);
    }
    if (script.includes("\0")) throw new Error(`remoteCommand(${step}): the script contains a NUL byte`);
    const body = script.endsWith("\n") ? script : `${script}\n`;
    const run = `bash -c "$(cat <<'${SCRIPT_DELIMITER}'\n${body}${SCRIPT_DELIMITER}\n)" ${shellQuote(step)}\n`;
    let command: string;
    if (user === "root") {
        command = run;
    } else {
        const message =
            `user ${user} cannot run sudo without a password on this host: ` +
            `add '${user} ALL=(ALL) NOPASSWD:ALL' to /etc/sudoers.d/${user.replace(/[^A-Za-z0-9_-]/g, "_")} ` +
            `(visudo -f /etc/sudoers.d/${user.replace(/[^A-Za-z0-9_-]/g, "_")})`;
        command =
            `if ! sudo -n true >/dev/null 2>&1; then\n` +
            `  printf '%s\\n' ${shellQuote(message)} >&2\n` +
            `  exit 1\n` +
            `fi\n` +
            `sudo -n ${run}`;
    }
    const bytes = Buffer.byteLength(command, "utf8");
    if (bytes > MAX_COMMAND_BYTES) {
        throw new Error(
            `remoteCommand(${step}): the command is ${bytes} bytes, over the ${MAX_COMMAND_BYTES}-byte limit of one argument on Linux`,
        );
    }
    return command;
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
