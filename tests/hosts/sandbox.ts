/**
 * Real Debian 12 (or, with `release: "trixie"`, Debian 13) hosts (systemd + sshd) booted on this machine with
 * systemd-nspawn, each in its own network namespace, for tests that run the
 * project's shell scripts for real over real SSH.
 *
 *   const sb = await startSandbox(["cp1", "w1"]);
 *   const r = await sb.ssh(sb.hosts[0], "kube", "sudo -n true");
 *   await sb.stop();
 *
 * Needs root on Linux. The base root file system is built once by
 * tests/hosts/setup.sh (debootstrap, ~1 min) into <repo>/.cache/sandbox and
 * copied per host. Every sandbox gets:
 *   - one Linux bridge `sbbr<hash>` in the root namespace holding
 *     <prefix>.1/24; host i is <prefix>.(i+2) on eth0 in netns `sb-<name>`,
 *     default route via <prefix>.1 (no NAT: no internet), so hosts reach
 *     each other on one L2 segment;
 *   - a fresh ed25519 key pair authorised for root, kube (passwordless sudo)
 *     and nosudo (no sudo);
 *   - per host: its own hostname, /etc/hosts listing all sandbox hosts,
 *     machine-id and ssh host keys.
 * Only addresses inside namespaces made here are ever ssh targets.
 */
import { ChildProcess, spawn, spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";

export interface SandboxHost {
    name: string;
    /** IPv4 address of the host's eth0, reachable from this machine and the other hosts. */
    address: string;
    port: number;
    /** Network namespace (under /run/netns) the host lives in. */
    netns: string;
    /** The host's root file system (a copy of the cached base). */
    root: string;
    /** PID of the systemd-nspawn process running the host. */
    pid: number;
    /** Host-side veth interface (enslaved to the sandbox bridge). */
    veth: string;
    /** Output of `systemctl is-system-running` once booted: "running" or "degraded". */
    systemState: string;
    /** systemd-nspawn's console output (boot log) goes here. */
    logPath: string;
    /** With `realContainers`: the host's own cgroup directory in each hierarchy (on this machine). */
    cgroups: string[];
    /** The Debian release the host runs. */
    release: DebianRelease;
}

export interface SshResult {
    code: number;
    stdout: string;
    stderr: string;
}

export interface Sandbox {
    hosts: SandboxHost[];
    /** OpenSSH private key text (ed25519), authorised for root, kube and nosudo on every host. */
    privateKey: string;
    publicKey: string;
    keyPath: string;
    /** Bridge in the root namespace and its address (<prefix>.1). */
    bridge: string;
    gateway: string;
    subnetPrefix: string;
    /** Seconds spent in each phase of startSandbox (setup, copy, boot). */
    timings: Record<string, number>;
    /** Run `command` on `host` as `user`; never rejects. Exit code 124 on timeout. */
    ssh(host: SandboxHost, user: string, command: string, stdin?: string, timeoutMs?: number): Promise<SshResult>;
    /** The ssh argv (without the remote command) for `host` as `user`, for callers that spawn ssh themselves. */
    sshArgs(host: SandboxHost, user: string): string[];
    host(name: string): SandboxHost;
    /** Kill the hosts, remove namespaces, veths, bridge, copies and key. Idempotent. */
    stop(): Promise<void>;
}

/** The Debian releases a sandbox host can run, each from its own cached base (tests/hosts/setup.sh). */
export type DebianRelease = "bookworm" | "trixie";
/** os-release VERSION_ID of each release. */
export const DEBIAN_VERSION: Readonly<Record<DebianRelease, string>> = { bookworm: "12", trixie: "13" };

export interface SandboxOptions {
    /** The Debian release of every host: "bookworm" (Debian 12, the default) or "trixie" (Debian 13). */
    release?: DebianRelease;
    /** First three octets of the sandbox /24, e.g. "10.213.7". Default: 10.213.<derived from the names>. */
    subnetPrefix?: string;
    /** Bound on waiting for all hosts to answer ssh with a booted systemd (ms). Default 60000. */
    bootTimeoutMs?: number;
    /** Extra systemd-nspawn arguments (e.g. capabilities, bind mounts). */
    nspawnArgs?: string[];
    /** Print progress lines to stderr. Default true. */
    verbose?: boolean;
    /**
     * Let the hosts run real containers (a real containerd, runc and kubelet;
     * tests/cluster). Default false. What it takes on this machine (cgroup v1,
     * shared kernel; ../shared/SANDBOX.md): each host gets its own child cgroup
     * in every hierarchy this process is in, made before systemd-nspawn starts
     * (runc cannot create cgroups at the machine's read-only root), bound over
     * /sys/fs/cgroup/<hierarchy> inside; `--capability=all`,
     * `--system-call-filter=@keyring` (runc joins a session keyring),
     * `--bind-ro=/dev/kmsg` (the kubelet's OOM watcher); a oneshot unit that makes
     * the host's own /proc/sys/net writable and binds the values the kubelet
     * checks over vm/overcommit_memory, kernel/panic and kernel/panic_on_oops
     * (the machine's own sysctls stay untouched); DefaultTimeoutStopSec=10s
     * (containers ignoring SIGTERM would hold a shutdown for 90 s). The cgroups
     * are removed deepest-first when the host stops.
     */
    realContainers?: boolean;
}

const REPO = path.resolve(__dirname, "..", "..");
export const SETUP_SCRIPT = path.join(__dirname, "setup.sh");
export const CACHE_DIR = process.env.SANDBOX_CACHE_DIR ?? path.join(REPO, ".cache", "sandbox");
/** The cached base root file system of a release (one directory each, so one release's rebuild never touches another's). */
export function baseRoot(release: DebianRelease = "bookworm"): string {
    return path.join(CACHE_DIR, `rootfs-${release}`);
}
export const BASE_ROOT = baseRoot("bookworm");
const HOSTS_DIR = path.join(CACHE_DIR, "hosts");
const READY_MARK = path.join(BASE_ROOT, ".sandbox-ready");

const SSH_OPTS = [
    "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null",
    "-o", "BatchMode=yes",
    "-o", "ConnectTimeout=5",
    "-o", "LogLevel=ERROR",
];

const NAME_RE = /^[a-z][a-z0-9-]{0,30}$/;

function hashHex(s: string, n: number): string {
    return crypto.createHash("sha256").update(s).digest("hex").slice(0, n);
}

/** Deterministic resource names, so a later run can find a crashed run's leftovers. */
function netnsName(name: string): string {
    return `sb-${name}`;
}
function vethName(name: string): string {
    return `sbv${hashHex(name, 8)}`; // <= 15 chars (IFNAMSIZ)
}
function bridgeName(prefix: string): string {
    return `sbbr${hashHex(prefix, 8)}`;
}
function defaultPrefix(names: string[]): string {
    return `10.213.${1 + (parseInt(hashHex([...names].sort().join(","), 8), 16) % 254)}`;
}

function which(cmd: string): boolean {
    return spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
}

/** Run synchronously; returns status and output (never throws). */
function run(cmd: string, args: string[], input?: string): { code: number; out: string } {
    const r = spawnSync(cmd, args, { input, encoding: "utf8", stdio: ["pipe", "pipe", "pipe"] });
    return { code: r.status ?? -1, out: `${r.stdout ?? ""}${r.stderr ?? ""}${r.error ? String(r.error) : ""}` };
}

function must(cmd: string, args: string[]): string {
    const r = run(cmd, args);
    if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.code}): ${r.out.trim()}`);
    return r.out;
}

/** Runs an async command; resolves with its code and output. */
function runAsync(cmd: string, args: string[], opts: { stdin?: string; timeoutMs?: number } = {}): Promise<SshResult> {
    return new Promise((resolve) => {
        const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        let timedOut = false;
        const timer = opts.timeoutMs
            ? setTimeout(() => {
                  timedOut = true;
                  child.kill("SIGKILL");
              }, opts.timeoutMs)
            : undefined;
        child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
        child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
        child.stdin.on("error", () => undefined); // remote may not read stdin
        child.on("error", (e) => {
            if (timer) clearTimeout(timer);
            resolve({ code: -1, stdout, stderr: stderr + String(e) });
        });
        child.on("close", (code) => {
            if (timer) clearTimeout(timer);
            if (timedOut) resolve({ code: 124, stdout, stderr: `${stderr}\n[sandbox] timed out after ${opts.timeoutMs} ms` });
            else resolve({ code: code ?? -1, stdout, stderr });
        });
        child.stdin.end(opts.stdin ?? "");
    });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves true when `p` settles within `ms`, false otherwise; leaves no timer behind. */
function within(p: Promise<unknown>, ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)));
    return Promise.race([p.then(() => true), timeout]).finally(() => clearTimeout(timer));
}

/** Whether sandbox hosts can be booted here; `why` says what is missing. */
export function sandboxAvailable(): { ok: boolean; why?: string } {
    if (process.platform !== "linux") return { ok: false, why: `needs Linux (this is ${process.platform})` };
    if (typeof process.getuid !== "function" || process.getuid() !== 0) return { ok: false, why: "needs root (systemd-nspawn, ip netns)" };
    const canInstall = which("apt-get");
    const missing = ["systemd-nspawn", "ip", "ssh", "ssh-keygen", "flock"].filter((c) => !which(c));
    if (missing.length && !canInstall) return { ok: false, why: `missing ${missing.join(", ")} and no apt-get to install them (see tests/hosts/setup.sh)` };
    if (!fs.existsSync(READY_MARK) && !which("debootstrap") && !canInstall)
        return { ok: false, why: `no cached root fs at ${BASE_ROOT}, no debootstrap and no apt-get to install it` };
    if (which("ip")) {
        const probe = `sbprobe-${process.pid}`;
        const r = run("ip", ["netns", "add", probe]);
        run("ip", ["netns", "del", probe]);
        if (r.code !== 0) return { ok: false, why: `cannot create network namespaces: ${r.out.trim()}` };
    }
    if (!fs.existsSync("/sys/fs/cgroup")) return { ok: false, why: "no /sys/fs/cgroup" };
    return { ok: true };
}

// ---------------------------------------------------------------------------
// Per-host cgroups (realContainers).

const CGROUP_FS = "/sys/fs/cgroup";

interface Hierarchy {
    /** Directory under /sys/fs/cgroup where the hierarchy is mounted (cpu, memory, systemd, unified, ...). */
    mount: string;
    /** This process's cgroup in it (from /proc/self/cgroup). */
    own: string;
}

/**
 * The hierarchies this process is in that are mounted under /sys/fs/cgroup,
 * with this process's cgroup in each. cgroup v1 lines name their controllers
 * ("memory", "cpu,cpuacct", "name=systemd"); the v2 line (id 0, no controllers)
 * is the unified hierarchy, at /sys/fs/cgroup/unified in the hybrid layout.
 */
function cgroupHierarchies(): Hierarchy[] {
    const out: Hierarchy[] = [];
    for (const line of fs.readFileSync("/proc/self/cgroup", "utf8").trim().split("\n")) {
        const m = /^(\d+):([^:]*):(.*)$/.exec(line);
        if (!m) continue;
        const name = m[2] === "" ? "unified" : m[2].replace(/^name=/, "");
        const mount = path.join(CGROUP_FS, name);
        if (fs.existsSync(path.join(mount, "cgroup.procs"))) out.push({ mount, own: m[3] });
    }
    return out;
}

/** The per-host cgroup directory `name` gets in each hierarchy (deterministic: a later run finds a crashed run's). */
function hostCgroupDirs(name: string): { mount: string; dir: string }[] {
    return cgroupHierarchies().map((h) => ({ mount: h.mount, dir: path.join(h.mount, h.own, `kp-sandbox-${name}`) }));
}

/** Make the host's cgroups (cpuset needs cpus/mems copied from the parent before a process can join). */
function makeHostCgroups(name: string): { mount: string; dir: string }[] {
    const dirs = hostCgroupDirs(name);
    // The recipe is for the v1/hybrid layout this machine has (a pure cgroup v2
    // machine mounts the unified hierarchy at /sys/fs/cgroup itself).
    if (!dirs.some((d) => path.basename(d.mount) === "memory"))
        throw new Error(`startSandbox realContainers: no cgroup v1 memory hierarchy under ${CGROUP_FS} (only the v1/hybrid layout is supported)`);
    for (const { dir } of dirs) {
        fs.mkdirSync(dir, { recursive: true });
        for (const f of ["cpuset.cpus", "cpuset.mems"]) {
            const own = path.join(dir, f);
            if (fs.existsSync(own) && fs.readFileSync(own, "utf8").trim() === "")
                fs.writeFileSync(own, fs.readFileSync(path.join(path.dirname(dir), f), "utf8"));
        }
    }
    return dirs;
}

function subdirs(dir: string): string[] {
    try {
        return fs.readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => path.join(dir, e.name));
    } catch {
        return [];
    }
}

/** Every process in the hosts' cgroup subtrees (pods in their own network namespaces included). */
function cgroupPids(names: string[]): number[] {
    const pids = new Set<number>();
    const walk = (dir: string) => {
        try {
            for (const p of fs.readFileSync(path.join(dir, "cgroup.procs"), "utf8").split("\n")) if (/^\d+$/.test(p)) pids.add(Number(p));
        } catch {
            return;
        }
        subdirs(dir).forEach(walk);
    };
    for (const n of names) for (const { dir } of hostCgroupDirs(n)) walk(dir);
    pids.delete(process.pid);
    return [...pids];
}

/** Remove the hosts' cgroup subtrees, deepest first (a cgroup with children or processes cannot go). */
function removeHostCgroups(names: string[]): void {
    const rm = (dir: string) => {
        subdirs(dir).forEach(rm);
        try {
            fs.rmdirSync(dir);
        } catch {
            /* gone, or still busy: reported by the caller's residue checks */
        }
    };
    for (const n of names) for (const { dir } of hostCgroupDirs(n)) if (fs.existsSync(dir)) rm(dir);
}

/** Files written into a host's root for `realContainers` (see SandboxOptions.realContainers). */
const REAL_CONTAINER_FILES: Record<string, string> = {
    "etc/systemd/system.conf.d/90-kp-sandbox.conf":
        "# Sandbox host (tests): pods ignoring SIGTERM must not hold a shutdown for 90 s.\n[Manager]\nDefaultTimeoutStopSec=10s\n",
    "usr/local/sbin/kp-sandbox-sysctl": [
        "#!/bin/sh",
        "# Sandbox host (tests): /proc/sys is read-only inside systemd-nspawn. /proc/sys/net",
        "# belongs to this host's own network namespace: make it writable. The kubelet",
        "# checks three machine-wide values: bind files holding what it wants over",
        "# them (the machine's own values are not touched).",
        "set -eu",
        "mount --bind /proc/sys/net /proc/sys/net",
        "mount -o remount,bind,rw /proc/sys/net",
        "mkdir -p /run/kp-sandbox-sysctl",
        "for kv in vm/overcommit_memory=1 kernel/panic=10 kernel/panic_on_oops=1; do",
        "    key=${kv%%=*}",
        "    f=/run/kp-sandbox-sysctl/$(echo \"$key\" | tr / .)",
        "    echo \"${kv#*=}\" >\"$f\"",
        "    mount --bind \"$f\" \"/proc/sys/$key\"",
        "done",
        "",
    ].join("\n"),
    "etc/systemd/system/kp-sandbox-sysctl.service": [
        "[Unit]",
        "Description=Sandbox host (tests): writable /proc/sys/net and the kubelet's sysctl values",
        "DefaultDependencies=no",
        "After=local-fs.target",
        "Before=sysinit.target containerd.service kubelet.service",
        "",
        "[Service]",
        "Type=oneshot",
        "RemainAfterExit=yes",
        "ExecStart=/usr/local/sbin/kp-sandbox-sysctl",
        "",
        "[Install]",
        "WantedBy=sysinit.target",
        "",
    ].join("\n"),
};

function writeRealContainerFiles(root: string): void {
    for (const [rel, text] of Object.entries(REAL_CONTAINER_FILES)) {
        const f = path.join(root, rel);
        fs.mkdirSync(path.dirname(f), { recursive: true });
        fs.writeFileSync(f, text, { mode: rel.includes("/sbin/") ? 0o755 : 0o644 });
    }
    const wants = path.join(root, "etc/systemd/system/sysinit.target.wants");
    fs.mkdirSync(wants, { recursive: true });
    fs.symlinkSync("/etc/systemd/system/kp-sandbox-sysctl.service", path.join(wants, "kp-sandbox-sysctl.service"));
}

// ---------------------------------------------------------------------------
// Cleanup (also run from process exit handlers, so all synchronous).

interface Live {
    names: string[];
    bridge: string;
    pids: number[];
    keyDir: string;
}
const live = new Set<Live>();
let handlersInstalled = false;

/** Alive and not a zombie (a zombie child of ours stays "killable" until node reaps it). */
function pidAlive(pid: number): boolean {
    try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
        return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
    } catch {
        return false;
    }
}

function signal(pids: number[], sig: NodeJS.Signals): void {
    for (const pid of pids) {
        try {
            process.kill(pid, sig);
        } catch {
            /* gone */
        }
    }
}

function numericDirs(dir: string): number[] {
    return fs.readdirSync(dir).filter((e) => /^\d+$/.test(e)).map(Number);
}

/**
 * Processes inside the containers of `names`: those in the host's network
 * namespace (while /run/netns/sb-<name> exists) or chrooted into its per-host
 * root. Killing them is what stops a container whose systemd-nspawn is gone
 * (SIGKILL on nspawn leaves the container's systemd running, orphaned).
 */
function containerPids(names: string[]): number[] {
    const nsIds = new Set<string>();
    for (const n of names) {
        try {
            const st = fs.statSync(`/run/netns/${netnsName(n)}`);
            nsIds.add(`${st.dev}:${st.ino}`);
        } catch {
            /* no such netns */
        }
    }
    const roots = new Set(names.map((n) => path.join(HOSTS_DIR, n)));
    const pids: number[] = cgroupPids(names);
    for (const pid of numericDirs("/proc")) {
        if (pid === process.pid || pids.includes(pid)) continue;
        try {
            const st = fs.statSync(`/proc/${pid}/ns/net`);
            if (nsIds.has(`${st.dev}:${st.ino}`) || roots.has(fs.readlinkSync(`/proc/${pid}/root`))) pids.push(pid);
        } catch {
            /* gone or not ours to read */
        }
    }
    return pids;
}

/** systemd-nspawn processes running one of the per-host roots of `names` (e.g. left by a crashed run). */
function nspawnPids(names: string[]): number[] {
    const roots = new Set(names.map((n) => path.join(HOSTS_DIR, n)));
    const pids: number[] = [];
    for (const pid of numericDirs("/proc")) {
        let argv: string[];
        try {
            argv = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
        } catch {
            continue;
        }
        if (!argv[0] || path.basename(argv[0]) !== "systemd-nspawn") continue;
        const d = argv.indexOf("-D");
        if (d >= 0 && roots.has(argv[d + 1])) pids.push(pid);
    }
    return pids;
}

function waitGoneSync(pids: number[], ms: number): boolean {
    const deadline = Date.now() + ms;
    while (pids.some(pidAlive)) {
        if (Date.now() >= deadline) return false;
        spawnSync("sleep", ["0.1"]);
    }
    return true;
}

/**
 * Stop the containers of `names`, synchronously: SIGTERM to systemd-nspawn (an
 * orderly poweroff of the container, ~1 s), then SIGKILL to whatever is left
 * inside the containers and to nspawn.
 */
function terminateSync(names: string[], extraPids: number[], graceMs: number): void {
    const nspawn = [...new Set([...nspawnPids(names), ...extraPids])].filter(pidAlive);
    signal(nspawn, "SIGTERM");
    if (waitGoneSync(nspawn, graceMs) && containerPids(names).length === 0) return;
    for (let i = 0; i < 3; i++) {
        const inside = containerPids(names);
        signal([...inside, ...nspawn], "SIGKILL");
        if (waitGoneSync([...inside, ...nspawn], 5000) && containerPids(names).length === 0) return;
    }
}

/** Remove network and file-system leftovers for `names` (and the bridge). */
function removeResources(names: string[], bridge: string | undefined): void {
    for (const name of names) {
        run("ip", ["netns", "del", netnsName(name)]); // takes eth0 and thus the veth pair with it
        run("ip", ["link", "del", vethName(name)]);
        const root = path.join(HOSTS_DIR, name);
        if (fs.existsSync(root)) run("rm", ["-rf", "--one-file-system", root]);
    }
    removeHostCgroups(names);
    if (bridge) run("ip", ["link", "del", bridge]);
}

function cleanupLiveSync(): void {
    for (const l of live) {
        terminateSync(l.names, l.pids, 5000);
        removeResources(l.names, l.bridge);
        fs.rmSync(l.keyDir, { recursive: true, force: true });
        live.delete(l);
    }
}

function installExitHandlers(): void {
    if (handlersInstalled) return;
    handlersInstalled = true;
    process.on("exit", cleanupLiveSync);
    for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
        process.once(sig, () => {
            cleanupLiveSync();
            process.kill(process.pid, sig);
        });
    }
}

// ---------------------------------------------------------------------------

function runSetup(log: (s: string) => void, release: DebianRelease): Promise<void> {
    return new Promise((resolve, reject) => {
        const child = spawn("bash", [SETUP_SCRIPT], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, SANDBOX_CACHE_DIR: CACHE_DIR, SANDBOX_RELEASE: release } });
        let out = "";
        const onData = (d: Buffer) => {
            const s = d.toString();
            out += s;
            for (const line of s.split("\n")) if (line.trim()) log(line);
        };
        child.stdout.on("data", onData);
        child.stderr.on("data", onData);
        child.on("error", reject);
        child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`${SETUP_SCRIPT} failed (${code}):\n${out}`))));
    });
}

function readIds(root: string): Map<string, [number, number]> {
    const ids = new Map<string, [number, number]>();
    for (const line of fs.readFileSync(path.join(root, "etc/passwd"), "utf8").split("\n")) {
        const f = line.split(":");
        if (f.length >= 4) ids.set(f[0], [Number(f[2]), Number(f[3])]);
    }
    return ids;
}

/** Copy the base and personalise it for `name`. */
async function prepareRoot(root: string, name: string, hostsFile: string, publicKey: string, realContainers: boolean, release: DebianRelease): Promise<void> {
    // Shared lock: setup.sh (exclusive) never swaps the base out under a copy.
    const base = baseRoot(release);
    const cp = await runAsync("flock", ["-s", path.join(CACHE_DIR, ".setup.lock"), "cp", "-a", "--reflink=auto", base, root]);
    if (cp.code !== 0) throw new Error(`copying ${base} to ${root} failed (${cp.code}): ${cp.stderr.trim()}`);
    fs.writeFileSync(path.join(root, "etc/hostname"), `${name}\n`);
    fs.writeFileSync(path.join(root, "etc/hosts"), hostsFile);
    fs.writeFileSync(path.join(root, "etc/machine-id"), `${crypto.randomBytes(16).toString("hex")}\n`);
    must("ssh-keygen", ["-A", "-f", root]); // fresh host keys in root/etc/ssh
    const ids = readIds(root);
    for (const [user, home] of [["root", "/root"], ["kube", "/home/kube"], ["nosudo", "/home/nosudo"]] as const) {
        const [uid, gid] = ids.get(user) ?? [0, 0];
        const dir = path.join(root, home, ".ssh");
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
        fs.chownSync(dir, uid, gid);
        const ak = path.join(dir, "authorized_keys");
        fs.writeFileSync(ak, publicKey, { mode: 0o600 });
        fs.chownSync(ak, uid, gid);
    }
    if (realContainers) writeRealContainerFiles(root);
}

/**
 * Boot one sandbox host per name (in parallel) and wait until each answers ssh
 * with a booted systemd (bounded by opts.bootTimeoutMs). Runs tests/hosts/setup.sh
 * first (a no-op check when the cache is in place; ~1 min debootstrap when not).
 * Names must be unique among sandboxes running at the same time on this machine.
 */
export async function startSandbox(names: string[], opts: SandboxOptions = {}): Promise<Sandbox> {
    const verbose = opts.verbose ?? true;
    const log = (s: string) => {
        if (verbose) process.stderr.write(`[sandbox] ${s}\n`);
    };
    const avail = sandboxAvailable();
    if (!avail.ok) throw new Error(`sandbox not available: ${avail.why}`);
    if (names.length === 0 || names.length > 250) throw new Error("startSandbox: need 1..250 host names");
    for (const n of names) if (!NAME_RE.test(n)) throw new Error(`startSandbox: bad host name ${JSON.stringify(n)} (want ${NAME_RE})`);
    if (new Set(names).size !== names.length) throw new Error("startSandbox: duplicate host names");
    const release = opts.release ?? "bookworm";
    if (!(release in DEBIAN_VERSION)) throw new Error(`startSandbox: release must be one of ${Object.keys(DEBIAN_VERSION).join(", ")}, got ${JSON.stringify(release)}`);
    const prefix = opts.subnetPrefix ?? defaultPrefix(names);
    if (!/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.test(prefix) || prefix.split(".").some((o) => Number(o) > 255))
        throw new Error(`startSandbox: subnetPrefix must be three octets like "10.213.7", got ${JSON.stringify(prefix)}`);

    const timings: Record<string, number> = {};
    let t = Date.now();
    const lap = (k: string) => {
        timings[k] = (Date.now() - t) / 1000;
        t = Date.now();
        log(`${k}: ${timings[k].toFixed(1)} s`);
    };

    // Cheap when everything is in place; rebuilds the base when setup.sh's recipe changed.
    await runSetup(log, release);
    lap("setup");

    const bridge = bridgeName(prefix);
    const gateway = `${prefix}.1`;

    // Leftovers of a crashed run with the same names / subnet.
    const stale = [...nspawnPids(names), ...containerPids(names)];
    if (stale.length) log(`stopping leftovers of an earlier run: pids ${stale.join(" ")}`);
    terminateSync(names, [], 10000);
    removeResources(names, bridge);
    fs.mkdirSync(HOSTS_DIR, { recursive: true });
    const clash = run("ip", ["-4", "-o", "addr", "show"]).out.split("\n").find((l) => l.includes(` ${prefix}.`));
    if (clash) throw new Error(`startSandbox: subnet ${prefix}.0/24 already in use here (${clash.trim()}); pass another subnetPrefix`);

    installExitHandlers();
    // Deterministic, so a crashed run's key is removed by the next run with these names.
    const keyDir = path.join(HOSTS_DIR, `key-${hashHex([...names].sort().join(","), 12)}`);
    fs.rmSync(keyDir, { recursive: true, force: true });
    fs.mkdirSync(keyDir, { mode: 0o700 });
    const state: Live = { names: [...names], bridge, pids: [], keyDir };
    live.add(state);
    const children = new Map<string, ChildProcess>();
    const hosts: SandboxHost[] = names.map((name, i) => ({
        name,
        address: `${prefix}.${i + 2}`,
        port: 22,
        netns: netnsName(name),
        root: path.join(HOSTS_DIR, name),
        pid: 0,
        veth: vethName(name),
        systemState: "",
        logPath: path.join(HOSTS_DIR, `${name}.log`),
        cgroups: [],
        release,
    }));

    const keyPath = path.join(keyDir, "id_ed25519");
    const sshArgs = (host: SandboxHost, user: string) => [...SSH_OPTS, "-i", keyPath, "-p", String(host.port), `${user}@${host.address}`];
    const ssh = (host: SandboxHost, user: string, command: string, stdin?: string, timeoutMs = 120000) =>
        runAsync("ssh", [...sshArgs(host, user), command], { stdin, timeoutMs });

    let stopped = false;
    const stop = async (): Promise<void> => {
        if (stopped) return;
        stopped = true;
        // SIGTERM makes nspawn ask the container's systemd for an orderly poweroff.
        await Promise.all(
            hosts.map(async (h) => {
                const child = children.get(h.name);
                if (!child || child.exitCode !== null || child.signalCode !== null) return;
                const exited = new Promise<void>((r) => child.once("exit", () => r()));
                child.kill("SIGTERM");
                await within(exited, 15000); // if not, terminateSync below kills the inside first
            }),
        );
        // Anything left (nspawn that ignored SIGTERM/SIGKILL, orphaned container processes).
        terminateSync(names, state.pids, 0);
        removeResources(names, bridge);
        fs.rmSync(keyDir, { recursive: true, force: true });
        live.delete(state);
    };

    try {
        must("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "sandbox", "-f", keyPath]);
        const privateKey = fs.readFileSync(keyPath, "utf8");
        const publicKey = fs.readFileSync(`${keyPath}.pub`, "utf8");

        // Network: one bridge, one veth pair per host.
        must("ip", ["link", "add", bridge, "type", "bridge"]);
        must("ip", ["addr", "add", `${gateway}/24`, "dev", bridge]);
        must("ip", ["link", "set", bridge, "up"]);
        for (const h of hosts) {
            must("ip", ["netns", "add", h.netns]);
            must("ip", ["link", "add", h.veth, "type", "veth", "peer", "name", "eth0", "netns", h.netns]);
            must("ip", ["link", "set", h.veth, "master", bridge]);
            must("ip", ["link", "set", h.veth, "up"]);
            must("ip", ["-n", h.netns, "addr", "add", `${h.address}/24`, "dev", "eth0"]);
            must("ip", ["-n", h.netns, "link", "set", "eth0", "up"]);
            must("ip", ["-n", h.netns, "link", "set", "lo", "up"]);
            // systemd-nspawn mounts /proc/sys read-only, so the prepare step
            // cannot write this per-namespace sysctl from inside (it checks and
            // fails loudly when it is 0). Set it from outside, in the host's
            // own namespace only, as a real root would.
            must("ip", ["netns", "exec", h.netns, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
            must("ip", ["-n", h.netns, "route", "add", "default", "via", gateway]);
        }
        lap("network");

        const hostsFile =
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" + hosts.map((h) => `${h.address}\t${h.name}\n`).join("");
        await Promise.all(hosts.map((h) => prepareRoot(h.root, h.name, hostsFile, publicKey, opts.realContainers ?? false, release)));
        lap("copy");

        for (const h of hosts) {
            const out = fs.openSync(h.logPath, "w");
            let realArgs: string[] = [];
            let enter: string[] = [];
            if (opts.realContainers) {
                const dirs = makeHostCgroups(h.name);
                h.cgroups = dirs.map((d) => d.dir);
                realArgs = [
                    "--capability=all",
                    "--system-call-filter=@keyring",
                    "--tmpfs=/sys/fs/cgroup",
                    ...dirs.map((d) => `--bind=${d.dir}:/sys/fs/cgroup/${path.basename(d.mount)}`),
                    "--bind-ro=/dev/kmsg",
                ];
                // The process that becomes systemd-nspawn joins the host's cgroups first.
                enter = h.cgroups;
            }
            const nspawnArgs = [
                    "-D", h.root,
                    "--boot",
                    "--register=no",
                    "--keep-unit",
                    `--network-namespace-path=/run/netns/${h.netns}`,
                    `--machine=${h.name}`,
                    "--console=read-only",
                    // A real host's root may change its own network: CNI
                    // interfaces, iptables and nftables rules (and their
                    // cleanup) need it. The namespace is this test's own.
                    "--capability=CAP_NET_ADMIN,CAP_NET_RAW",
                    ...realArgs,
                    ...(opts.nspawnArgs ?? []),
            ];
            const child = enter.length
                ? spawn(
                      "sh",
                      ["-c", 'while [ "$1" != -- ]; do echo $$ >"$1/cgroup.procs" || exit 125; shift; done; shift; exec "$@"', "sh", ...enter, "--", "systemd-nspawn", ...nspawnArgs],
                      { stdio: ["ignore", out, out] },
                  )
                : spawn("systemd-nspawn", nspawnArgs, { stdio: ["ignore", out, out] });
            fs.closeSync(out);
            child.on("error", () => undefined);
            if (!child.pid) throw new Error(`systemd-nspawn for ${h.name} did not start`);
            h.pid = child.pid;
            const pid = child.pid;
            state.pids.push(pid);
            // Forget it once reaped, so a recycled PID is never signalled.
            child.on("exit", () => {
                const i = state.pids.indexOf(pid);
                if (i >= 0) state.pids.splice(i, 1);
            });
            children.set(h.name, child);
        }

        const deadline = Date.now() + (opts.bootTimeoutMs ?? 60000);
        const tail = (h: SandboxHost) => {
            try {
                return fs.readFileSync(h.logPath, "utf8").split("\n").slice(-25).join("\n");
            } catch {
                return "";
            }
        };
        await Promise.all(
            hosts.map(async (h) => {
                const child = children.get(h.name)!;
                let last = "";
                let restarts = 0;
                for (;;) {
                    if (child.exitCode !== null || child.signalCode !== null)
                        throw new Error(`host ${h.name}: systemd-nspawn exited (${child.exitCode ?? child.signalCode}); log ${h.logPath}:\n${tail(h)}`);
                    const left = deadline - Date.now();
                    if (left <= 0)
                        throw new Error(`host ${h.name} (${h.address}) not up within ${opts.bootTimeoutMs ?? 60000} ms; last: ${last}; log ${h.logPath}:\n${tail(h)}`);
                    const r = await ssh(h, "root", "systemctl is-system-running", undefined, Math.min(left, 10000));
                    const s = r.stdout.trim();
                    last = s || r.stderr.trim();
                    if (s === "running") {
                        h.systemState = s;
                        return;
                    }
                    if (s === "degraded") {
                        // A unit failed at boot. Seen here: systemd-user-sessions "Failed at
                        // step CGROUP" (the shared machine's cgroup v1 hierarchy not there
                        // yet under load), which leaves /run/nologin, so every login but
                        // root's is refused by pam_nologin. That race is transient: restart
                        // the failed units (a few tries); a host that still refuses every
                        // login but root's is an error, other failed units are accepted.
                        const failed = (await ssh(h, "root", "systemctl list-units --failed --plain --no-legend | awk '{ print $1 }'", undefined, 10000)).stdout.trim().split("\n").filter(Boolean);
                        if (restarts < 3 && failed.length > 0) {
                            restarts++;
                            console.warn(`[sandbox] ${h.name}: failed at boot: ${failed.join(", ")}; restarting (try ${restarts})`);
                            await ssh(h, "root", `systemctl reset-failed; systemctl restart ${failed.join(" ")}`, undefined, 20000);
                            continue;
                        }
                        const nologin = (await ssh(h, "root", "test -e /run/nologin && echo yes || true", undefined, 10000)).stdout.trim();
                        if (nologin === "yes") throw new Error(`host ${h.name}: only root may log in (/run/nologin is there; failed units: ${failed.join(", ") || "none"}); log ${h.logPath}:\n${tail(h)}`);
                        h.systemState = s;
                        return;
                    }
                    await sleep(500);
                }
            }),
        );
        lap("boot");

        return {
            hosts,
            privateKey,
            publicKey,
            keyPath,
            bridge,
            gateway,
            subnetPrefix: prefix,
            timings,
            ssh,
            sshArgs,
            host(name: string) {
                const h = hosts.find((x) => x.name === name);
                if (!h) throw new Error(`no sandbox host ${name}`);
                return h;
            },
            stop,
        };
    } catch (e) {
        await stop();
        throw e;
    }
}
