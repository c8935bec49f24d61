/**
 * The OS matrix in real bash, without the OSes: the scripts read a fake
 * os-release (KP_OS_RELEASE, the unit tests' override) of every supported
 * system and of some unsupported ones, and the family quirks run against
 * stubbed commands (getenforce/setenforce, firewall-cmd, ufw, apt-get) put
 * first on the scripts' PATH (KP_PATH_PREFIX). What this cannot show: that
 * the real commands of Ubuntu or the RHEL family behave like the stubs
 * (docs/os-matrix.md says what is covered where).
 */
import { SpawnSyncReturns, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

import { renderScript, shellQuote } from "../components/scripts";
import { firewallOpenings } from "../components/host";
import { ClusterSpec, HostSpec } from "../components/model";
import { CNI_PORTS } from "../components/addons/cni";

const SCRIPTS_DIR = path.join(__dirname, "..", "components", "scripts");
const LIB = path.join(SCRIPTS_DIR, "lib.sh");

let tmp: string;
beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "kubeadm-pulumi-os-"));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): SpawnSyncReturns<string> {
    const r = spawnSync(cmd, args, { encoding: "utf8", env: { ...process.env, ...env }, timeout: 60_000 });
    if (r.error) throw r.error;
    return r;
}

/** bash with lib.sh (and `files` from components/scripts) sourced under the rendered scripts' options, then `code`. */
function bash(code: string, env: NodeJS.ProcessEnv = {}, files: string[] = []): SpawnSyncReturns<string> {
    const sources = [LIB, ...files.map((f) => path.join(SCRIPTS_DIR, f))].map((f) => `source ${shellQuote(f)}`).join("\n");
    return run("bash", ["-c", `set -euo pipefail\nshopt -s inherit_errexit\n${sources}\n${code}\n`, "os-test"], env);
}

let n = 0;
function osRelease(text: string): string {
    const f = path.join(tmp, `os-release-${n++}`);
    fs.writeFileSync(f, text);
    return f;
}

// os-release files as the systems ship them (the fields the scripts read).
const rel = (id: string, version: string, pretty: string, extra = "") =>
    `NAME="${pretty.split(" ")[0]}"\nPRETTY_NAME="${pretty}"\nID=${id}\nVERSION_ID="${version}"\n${extra}`;

const SUPPORTED: [string, string, "debian" | "rhel"][] = [
    ["Debian 12", rel("debian", "12", "Debian GNU/Linux 12 (bookworm)", "VERSION_CODENAME=bookworm\n"), "debian"],
    ["Debian 13", rel("debian", "13", "Debian GNU/Linux 13 (trixie)", "VERSION_CODENAME=trixie\n"), "debian"],
    ["Ubuntu 22.04", rel("ubuntu", "22.04", "Ubuntu 22.04.5 LTS", "ID_LIKE=debian\nVERSION_CODENAME=jammy\n"), "debian"],
    ["Ubuntu 24.04", rel("ubuntu", "24.04", "Ubuntu 24.04.3 LTS", "ID_LIKE=debian\nVERSION_CODENAME=noble\n"), "debian"],
    ["Ubuntu 26.04", rel("ubuntu", "26.04", "Ubuntu 26.04 LTS", "ID_LIKE=debian\nVERSION_CODENAME=resolute\n"), "debian"],
    ["RHEL 9.6", rel("rhel", "9.6", "Red Hat Enterprise Linux 9.6 (Plow)", 'ID_LIKE="fedora"\n'), "rhel"],
    ["RHEL 10.0", rel("rhel", "10.0", "Red Hat Enterprise Linux 10.0 (Coughlan)", 'ID_LIKE="centos fedora"\n'), "rhel"],
    ["Rocky 9.6", rel("rocky", "9.6", "Rocky Linux 9.6 (Blue Onyx)", 'ID_LIKE="rhel centos fedora"\n'), "rhel"],
    ["Rocky 10.0", rel("rocky", "10.0", "Rocky Linux 10.0 (Red Quartz)", 'ID_LIKE="rhel centos fedora"\n'), "rhel"],
    ["AlmaLinux 9.6", rel("almalinux", "9.6", "AlmaLinux 9.6 (Sage Margay)", 'ID_LIKE="rhel centos fedora"\n'), "rhel"],
    ["AlmaLinux 10.0", rel("almalinux", "10.0", "AlmaLinux 10.0 (Purple Lion)", 'ID_LIKE="rhel centos fedora"\n'), "rhel"],
    ["CentOS Stream 9", rel("centos", "9", "CentOS Stream 9", 'ID_LIKE="rhel fedora"\n'), "rhel"],
    ["CentOS Stream 10", rel("centos", "10", "CentOS Stream 10 (Coughlan)", 'ID_LIKE="rhel fedora"\n'), "rhel"],
];

// Unsupported systems, and the family prepare would treat them as under preflight.ignore: [os] ("" = none).
const UNSUPPORTED: [string, string, string][] = [
    ["Debian 11", rel("debian", "11", "Debian GNU/Linux 11 (bullseye)"), "debian"],
    ["Ubuntu 20.04", rel("ubuntu", "20.04", "Ubuntu 20.04.6 LTS", "ID_LIKE=debian\n"), "debian"],
    ["Linux Mint 22", rel("linuxmint", "22", "Linux Mint 22", 'ID_LIKE="ubuntu debian"\n'), "debian"],
    ["Rocky 8.10", rel("rocky", "8.10", "Rocky Linux 8.10 (Green Obsidian)", 'ID_LIKE="rhel centos fedora"\n'), "rhel"],
    ["Rocky 90 (not 9)", rel("rocky", "90", "Rocky Linux 90", 'ID_LIKE="rhel centos fedora"\n'), "rhel"],
    ["Fedora 42", rel("fedora", "42", "Fedora Linux 42 (Server Edition)"), "rhel"],
    ["Oracle Linux 9", rel("ol", "9.6", "Oracle Linux Server 9.6", 'ID_LIKE="fedora"\n'), "rhel"],
    ["Arch Linux", 'NAME="Arch Linux"\nPRETTY_NAME="Arch Linux"\nID=arch\nBUILD_ID=rolling\n', ""],
    ["openSUSE Leap 15.6", rel("opensuse-leap", "15.6", "openSUSE Leap 15.6", 'ID_LIKE="suse opensuse"\n'), ""],
];

describe("OS detection from os-release (lib.sh kp_os_detect)", () => {
    const detect = (file: string) => bash('kp_os_detect; printf "%s|%s|%s|%s\\n" "$KP_OS_ID" "$KP_OS_VERSION" "$KP_OS_FAMILY" "$(kp_os_family_like)"', { KP_OS_RELEASE: file });

    it.each(SUPPORTED.map(([n, t, f]) => [n, f, t]))("%s is supported, family %s", (_name, family, text) => {
        const r = detect(osRelease(text));
        expect(r.stderr).toBe("");
        expect(r.stdout.trim().split("|")[2]).toBe(family);
    });

    it.each(UNSUPPORTED.map(([n, t, l]) => [n, l, t]))("%s is not supported (family by likeness: '%s')", (_name, like, text) => {
        const r = detect(osRelease(text));
        expect(r.stderr).toBe("");
        const [, , family, byLike] = r.stdout.trim().split("|");
        expect(family).toBe("");
        expect(byLike).toBe(like);
    });

    it("reads quoted and unquoted values, and only whole keys (VERSION_ID, not VERSION)", () => {
        const r = detect(osRelease("VERSION=\"12 (bookworm)\"\nID='debian'\nVERSION_ID=12\n"));
        expect(r.stdout.trim()).toBe("debian|12|debian|debian");
    });

    it("a missing os-release identifies nothing", () => {
        const r = bash('kp_os_detect; printf "%s|%s|%s\\n" "$KP_OS_ID" "$KP_OS_FAMILY" "$KP_OS_NAME"', { KP_OS_RELEASE: path.join(tmp, "absent") });
        expect(r.stdout.trim()).toBe(`||(no ${path.join(tmp, "absent")})`);
    });
});

describe("preflight's OS check (the rendered step, in real bash on this machine, everything else ignored)", () => {
    const OTHERS = ["kernel", "cgroup", "cpu", "memory", "hostname", "command", "systemd", "runtime", "port"];
    function preflight(file: string, ignore: string[] = OTHERS) {
        const script = renderScript("preflight", {
            NODE_NAME: "n1", IS_CONTROL_PLANE: false, KUBERNETES_MINOR: "1.36", MIN_CPUS: 1, MIN_MEMORY_MB: 1, PORTS: [], IGNORE: ignore, SOURCES: [], DISK: [],
        }, { action: "run", lib: SCRIPTS_DIR });
        return run("bash", ["-c", script, "preflight"], { KP_OS_RELEASE: file });
    }

    it.each([SUPPORTED[1], SUPPORTED[3], SUPPORTED[8]])("%s passes and reports its family in the facts", (_name, text, family) => {
        const r = preflight(osRelease(text));
        expect(r.stderr).not.toContain("operating system");
        expect(r.status).toBe(0);
        expect(JSON.parse(r.stdout).os.family).toBe(family);
    });

    it("an unsupported system fails naming what it found and the supported list", () => {
        const r = preflight(osRelease(UNSUPPORTED[2][1]));
        expect(r.status).toBe(1);
        expect(r.stderr).toContain(
            "  - unsupported operating system Linux Mint 22 (ID=linuxmint VERSION_ID=22); supported: Debian 12/13, Ubuntu 22.04/24.04/26.04, " +
            "or RHEL/Rocky/AlmaLinux/CentOS Stream 9/10. Fix: use a supported system, or accept the risk with preflight.ignore: [os] " +
            "(prepare then treats it as the debian family)\n",
        );
    });

    it("preflight.ignore: [os] lets a system of a known family through, as that family", () => {
        const r = preflight(osRelease(UNSUPPORTED[6][1]), [...OTHERS, "os"]);
        expect(r.status).toBe(0);
        expect(r.stderr).toContain("ignored by preflight.ignore (os): unsupported operating system Oracle Linux Server 9.6");
        expect(JSON.parse(r.stdout).os).toEqual({ id: "ol", versionId: "9.6", family: "rhel" });
    });

    it("a system of neither family, or no os-release, fails even with preflight.ignore: [os]", () => {
        const arch = preflight(osRelease(UNSUPPORTED[7][1]), [...OTHERS, "os"]);
        expect(arch.status).toBe(1);
        expect(arch.stderr).toContain("  - unsupported operating system Arch Linux (ID=arch VERSION_ID=), of neither the Debian nor the RHEL family; supported: ");
        const none = preflight(path.join(tmp, "absent"), [...OTHERS, "os"]);
        expect(none.status).toBe(1);
        expect(none.stderr).toContain(`  - ${path.join(tmp, "absent")} is missing, so the operating system cannot be identified. Fix: use Debian 12/13`);
    });
});

describe("prepare picks its family from os-release", () => {
    /** prepare.sh's functions, without running its main. */
    const family = (file: string) => bash('kp_step() { :; }\nsource "$KP_LIB/prepare.sh"\nprepare_family', { KP_OS_RELEASE: file, KP_LIB: SCRIPTS_DIR });

    it.each(SUPPORTED.map(([n, t, f]) => [n, f, t]))("%s -> %s", (_name, fam, text) => {
        const r = family(osRelease(text));
        expect({ out: r.stdout, err: r.stderr }).toEqual({ out: fam, err: "" });
    });

    it("an unsupported system of a known family is prepared as that family, with a warning", () => {
        const r = family(osRelease(UNSUPPORTED[0][1]));
        expect(r.stdout).toBe("debian");
        expect(r.stderr).toContain("warning: unsupported operating system Debian GNU/Linux 11 (bullseye) (ID=debian VERSION_ID=11) (supported: Debian 12/13");
    });

    it("the rendered prepare step refuses a system of neither family before touching anything", () => {
        const vars = {
            LOCAL_APT_SOURCE: "", LOCAL_RPM_BASEURL: "", LOCAL_REPO_KEY_URL: "", KUBERNETES_VERSION: "1.36.4", KUBERNETES_MINOR: "1.36",
            KUBERNETES_REPO_BASE: "https://pkgs.k8s.io/core:/stable:", DOCKER_REPO_BASE: "https://download.docker.com/linux", CONTAINERD_VERSION: "2.2.6",
            CONTAINERD_CONFIG: "", REGISTRY_DIRS: [], REGISTRY_HOSTS_TOML: [], REGISTRY_CAS: [], FIREWALL_PORTS: [], FIREWALL_SOURCES: [],
            CRICTL_CONFIG: "", PAUSE_IMAGE: "registry.k8s.io/pause:3.10.2", IMAGE_REPOSITORY: "registry.k8s.io", IS_CONTROL_PLANE: false,
            PROXY_HTTP: "", PROXY_HTTPS: "", NO_PROXY_LIST: "", APT_PROXY_CONF: "", CONTAINERD_PROXY_DROPIN: "",
            SSH_USER: "root", OFFLINE_REPO_DIR: "/var/cache/kubeadm-pulumi/packages", OFFLINE_PACKAGES: "", OFFLINE_IMAGES: [],
        };
        const r = run("bash", ["-c", renderScript("prepare", vars, { action: "run", lib: SCRIPTS_DIR }), "prepare"], { KP_OS_RELEASE: osRelease(UNSUPPORTED[8][1]) });
        expect(r.status).toBe(1);
        expect(r.stdout).toBe("");
        expect(r.stderr.trim().split("\n")).toEqual([
            expect.stringMatching(/error: unsupported operating system openSUSE Leap 15\.6 \(ID=opensuse-leap VERSION_ID=15\.6\): neither apt \(Debian family\) nor dnf \(RHEL family\) .*supported: Debian 12\/13, Ubuntu 22\.04\/24\.04\/26\.04, or RHEL\/Rocky\/AlmaLinux\/CentOS Stream 9\/10$/),
        ]);
    });
});

// ---------------------------------------------------------------------------
// Family quirks against stubbed commands.

/** A directory of stub commands, first on the scripts' PATH; every call is logged to <dir>/calls. */
function stubs(scripts: Record<string, string>): { bin: string; calls: () => string[] } {
    const bin = fs.mkdtempSync(path.join(tmp, "bin-"));
    for (const [name, body] of Object.entries(scripts)) {
        const text = body.startsWith("#!") ? body : `#!/bin/bash\nprintf '%s\\n' "${name} $*" >>${shellQuote(path.join(bin, "calls"))}\n${body}\n`;
        fs.writeFileSync(path.join(bin, name), text, { mode: 0o755 });
    }
    return { bin, calls: () => (fs.existsSync(path.join(bin, "calls")) ? fs.readFileSync(path.join(bin, "calls"), "utf8").trim().split("\n") : []) };
}

describe("RHEL family: SELinux permissive (prepare-rhel.sh family_security)", () => {
    function selinux(mode: string, config: string) {
        const s = stubs({ restorecon: "exit 0" });
        // getenforce answers from a state file setenforce writes, like the kernel would
        fs.writeFileSync(path.join(s.bin, "getenforce"), `#!/bin/bash\nprintf '%s\\n' "getenforce" >>${shellQuote(path.join(s.bin, "calls"))}\ncat ${shellQuote(path.join(s.bin, "mode"))}\n`, { mode: 0o755 });
        fs.writeFileSync(path.join(s.bin, "setenforce"), `#!/bin/bash\nprintf '%s\\n' "setenforce $*" >>${shellQuote(path.join(s.bin, "calls"))}\n[[ $1 == 0 ]] && echo Permissive >${shellQuote(path.join(s.bin, "mode"))}\n`, { mode: 0o755 });
        fs.writeFileSync(path.join(s.bin, "mode"), `${mode}\n`);
        const file = path.join(s.bin, "selinux-config");
        fs.writeFileSync(file, config, { mode: 0o644 });
        const once = () => bash("family_security", { KP_PATH_PREFIX: s.bin, KP_SELINUX_CONFIG: file }, ["prepare-common.sh", "prepare-rhel.sh"]);
        return { s, file, once };
    }

    const CONFIG = "# This file controls the state of SELinux on the system.\n# SELINUX=enforcing - SELinux security policy is enforced.\nSELINUX=enforcing\nSELINUXTYPE=targeted\n";

    it("Enforcing: setenforce 0 and SELINUX=permissive in the config (nothing else changed); a second run changes nothing", () => {
        const { s, file, once } = selinux("Enforcing", CONFIG);
        const first = once();
        expect(first.stderr).toBe("");
        expect(first.stdout).toBe(`selinux: changed (setenforce 0 (was Enforcing);SELINUX=permissive in ${file})\n`);
        expect(fs.readFileSync(file, "utf8")).toBe(CONFIG.replace("\nSELINUX=enforcing\n", "\nSELINUX=permissive\n"));
        expect((fs.statSync(file).mode & 0o777).toString(8)).toBe("644");
        const second = once();
        expect(second.stdout).toBe("selinux: unchanged\n");
        expect(s.calls().filter((c) => c.startsWith("setenforce"))).toEqual(["setenforce 0"]);
        expect(s.calls().filter((c) => c.startsWith("restorecon"))).toEqual([`restorecon -- ${file}`]);
    });

    it("Disabled stays disabled: no setenforce, config untouched", () => {
        const config = "SELINUX=disabled\nSELINUXTYPE=targeted\n";
        const { s, file, once } = selinux("Disabled", config);
        expect(once().stdout).toBe("selinux: unchanged\n");
        expect(fs.readFileSync(file, "utf8")).toBe(config);
        expect(s.calls()).toEqual(["getenforce"]);
    });

    it("a failing setenforce stops prepare with the manual fix", () => {
        const { s, once } = selinux("Enforcing", CONFIG);
        fs.writeFileSync(path.join(s.bin, "setenforce"), "#!/bin/bash\nexit 1\n", { mode: 0o755 });
        const r = once();
        expect(r.status).toBe(1);
        expect(r.stderr).toContain("error: setenforce 0 failed: set SELinux permissive by hand (setenforce 0) and re-run pulumi up");
    });
});

/** A firewall-cmd stand-in keeping firewalld's running and saved configuration as files (tests/os-stubs/firewall-cmd). */
const FIREWALL_CMD = fs.readFileSync(path.join(__dirname, "os-stubs", "firewall-cmd"), "utf8");

describe("firewalld: prepare opens the node's ports and records them, reset/uninstall close exactly those (lib.sh, prepare-common.sh)", () => {
    function firewall(running: boolean) {
        const s = stubs({ "firewall-cmd": FIREWALL_CMD });
        const fw = path.join(s.bin, "fw");
        fs.mkdirSync(fw);
        if (running) fs.writeFileSync(path.join(fw, "running"), "");
        const state = path.join(s.bin, "state");
        const read = (conf: string, file: string) => (fs.existsSync(path.join(fw, conf, file)) ? fs.readFileSync(path.join(fw, conf, file), "utf8").trim().split("\n").filter((l) => l) : []);
        const prepare = (ports: string[], sources: string[]) =>
            bash(`readonly -a FIREWALL_PORTS=(${ports.map(shellQuote).join(" ")}) FIREWALL_SOURCES=(${sources.map(shellQuote).join(" ")})\nprepare_firewall`,
                { KP_PATH_PREFIX: s.bin, KP_STATE_DIR: state }, ["prepare-common.sh"]);
        const close = () => bash("kp_firewall_close", { KP_PATH_PREFIX: s.bin, KP_STATE_DIR: state });
        return { s, fw, state, read, prepare, close };
    }
    const PORTS = ["6443/tcp", "10250/tcp", "8472/udp"];
    const SOURCES = ["10.244.0.0/16", "10.96.0.0/12"];

    it("opens ports (default zone) and trusts the pod and service networks, running and saved; keeps what was open before", () => {
        const f = firewall(true);
        // the user had opened 10250/tcp already, in both configurations
        for (const conf of ["runtime", "permanent"]) {
            fs.mkdirSync(path.join(f.fw, conf), { recursive: true });
            fs.writeFileSync(path.join(f.fw, conf, "public.port"), "10250/tcp\n22/tcp\n");
        }
        const first = f.prepare(PORTS, SOURCES);
        expect(first.stderr).toBe("");
        expect(first.stdout).toBe("firewall: changed (opened port 6443/tcp;opened port 8472/udp;opened source 10.244.0.0/16;opened source 10.96.0.0/12)\n");
        for (const conf of ["runtime", "permanent"]) {
            expect(f.read(conf, "public.port").sort()).toEqual(["10250/tcp", "22/tcp", "6443/tcp", "8472/udp"]);
            expect(f.read(conf, "trusted.source").sort()).toEqual(SOURCES.slice().sort());
        }
        expect(fs.readFileSync(path.join(f.state, "firewalld-opened"), "utf8")).toBe("port 6443/tcp\nport 8472/udp\nsource 10.244.0.0/16\nsource 10.96.0.0/12\n");
        expect(f.s.calls()).not.toContainEqual(expect.stringContaining("--reload"));

        // idempotent
        expect(f.prepare(PORTS, SOURCES).stdout).toBe("firewall: unchanged\n");

        // reset / uninstall: exactly what prepare opened goes, the user's ports stay; a second close does nothing
        const closed = f.close();
        expect(closed.stderr).toBe("");
        expect(closed.stdout.trim().split("\n")).toEqual([
            "firewalld: closed port 6443/tcp (opened by prepare)", "firewalld: closed port 8472/udp (opened by prepare)",
            "firewalld: closed source 10.244.0.0/16 (opened by prepare)", "firewalld: closed source 10.96.0.0/12 (opened by prepare)",
        ]);
        for (const conf of ["runtime", "permanent"]) {
            expect(f.read(conf, "public.port").sort()).toEqual(["10250/tcp", "22/tcp"]);
            expect(f.read(conf, "trusted.source")).toEqual([]);
        }
        expect(fs.existsSync(path.join(f.state, "firewalld-opened"))).toBe(false);
        expect(f.close().stdout).toBe("");
    });

    it("a port opened only in the running configuration (lost at the next reload) is saved too, and recorded", () => {
        const f = firewall(true);
        fs.mkdirSync(path.join(f.fw, "runtime"), { recursive: true });
        fs.writeFileSync(path.join(f.fw, "runtime", "public.port"), "6443/tcp\n");
        expect(f.prepare(["6443/tcp"], []).stdout).toBe("firewall: changed (opened port 6443/tcp)\n");
        expect(f.read("permanent", "public.port")).toEqual(["6443/tcp"]);
    });

    it("an item an earlier run opened and the config no longer wants is closed", () => {
        const f = firewall(true);
        f.prepare(["6443/tcp", "8472/udp"], []);
        const r = f.prepare(["6443/tcp", "4789/udp"], []);
        expect(r.stdout).toBe("firewall: changed (opened port 4789/udp;closed port 8472/udp)\n");
        expect(f.read("permanent", "public.port").sort()).toEqual(["4789/udp", "6443/tcp"]);
        expect(fs.readFileSync(path.join(f.state, "firewalld-opened"), "utf8")).toBe("port 4789/udp\nport 6443/tcp\n");
    });

    it("firewalld installed but not running: nothing is changed or recorded", () => {
        const f = firewall(false);
        expect(f.prepare(PORTS, SOURCES).stdout).toBe("firewall: unchanged\n");
        expect(f.s.calls()).toEqual(["firewall-cmd --state"]);
        expect(fs.existsSync(path.join(f.state, "firewalld-opened"))).toBe(false);
    });

    it("a source firewalld refuses (already bound to another zone) stops prepare with the reason", () => {
        const f = firewall(true);
        fs.writeFileSync(path.join(f.fw, "conflict"), "");
        const r = f.prepare([], ["10.244.0.0/16"]);
        expect(r.status).toBe(1);
        expect(r.stderr).toContain("error: firewalld refused to add source 10.244.0.0/16 to its saved configuration (a source can be in one zone only");
    });

    it("ufw active (Ubuntu) is not changed, but the warning says what to allow", () => {
        const s = stubs({ "firewall-cmd": "exit 127", ufw: "echo 'Status: active'" });
        const r = bash(`readonly -a FIREWALL_PORTS=('10250/tcp' '30000-32767/tcp') FIREWALL_SOURCES=('10.244.0.0/16')\nprepare_firewall`, { KP_PATH_PREFIX: s.bin }, ["prepare-common.sh"]);
        expect(r.stdout).toBe("firewall: unchanged\n");
        expect(r.stderr).toContain("warning: ufw is active and is not changed by this program: allow 10250/tcp 30000-32767/tcp");
        expect(s.calls()).toEqual(["firewall-cmd --state", "ufw status"]);
    });
});

describe("firewallOpenings: what prepare opens, per role and CNI", () => {
    const spec = (cni: ClusterSpec["network"]["cni"], apiPort = 6443, ingress = { enabled: false, nodes: [] as string[], httpPort: 80, httpsPort: 443 }) =>
        ({ apiServer: { port: apiPort }, network: { podSubnet: "10.244.0.0/16", serviceSubnet: "10.96.0.0/12", cni }, addons: { ingress } }) as unknown as ClusterSpec;
    const host = (...roles: HostSpec["roles"]) => ({ name: "h", roles }) as unknown as HostSpec;

    it("a control plane: the API server (its configured port), etcd, kubelet, kube-proxy, controller-manager, scheduler, the CNI's", () => {
        expect(firewallOpenings(spec("flannel", 8443), host("control-plane"))).toEqual({
            ports: ["2379/tcp", "2380/tcp", "8443/tcp", "10250/tcp", "10256/tcp", "10257/tcp", "10259/tcp", "8472/udp"],
            sources: ["10.244.0.0/16", "10.96.0.0/12"],
        });
    });

    it("a worker: kubelet, kube-proxy, NodePorts and the CNI's; a control plane that is a worker gets the NodePorts too", () => {
        expect(firewallOpenings(spec("calico"), host("worker")).ports).toEqual(["10250/tcp", "10256/tcp", "30000-32767/tcp", ...CNI_PORTS.calico]);
        expect(firewallOpenings(spec("none"), host("control-plane", "worker")).ports).toContain("30000-32767/tcp");
        expect(firewallOpenings(spec("none"), host("worker")).ports).toEqual(["10250/tcp", "10256/tcp", "30000-32767/tcp"]);
    });

    it("the ingress controller's ports on the nodes it runs on only", () => {
        const withIngress = spec("flannel", 6443, { enabled: true, nodes: ["h"], httpPort: 80, httpsPort: 443 });
        expect(firewallOpenings(withIngress, host("worker")).ports).toEqual(["10250/tcp", "10256/tcp", "30000-32767/tcp", "8472/udp", "80/tcp", "443/tcp"]);
        const elsewhere = spec("flannel", 6443, { enabled: true, nodes: ["other"], httpPort: 80, httpsPort: 443 });
        expect(firewallOpenings(elsewhere, host("worker")).ports).not.toContain("80/tcp");
    });
});

describe("apt never prompts (Ubuntu's needrestart, debconf): prepare-debian.sh", () => {
    it("apt-get runs with DEBIAN_FRONTEND=noninteractive and needrestart suspended", () => {
        const s = stubs({ "apt-get": 'printf "%s %s %s\\n" "$DEBIAN_FRONTEND" "$NEEDRESTART_SUSPEND" "$NEEDRESTART_MODE" >"$(dirname "$0")/env"' });
        const r = bash("apt_update", { KP_PATH_PREFIX: s.bin, DEBIAN_FRONTEND: "", NEEDRESTART_SUSPEND: "", NEEDRESTART_MODE: "" }, ["prepare-common.sh", "prepare-debian.sh"]);
        expect(r.status).toBe(0);
        expect(fs.readFileSync(path.join(s.bin, "env"), "utf8")).toBe("noninteractive 1 l\n");
    });
});

describe("NetworkManager leaves the CNI interfaces alone (prepare-common.sh prepare_network_manager)", () => {
    function nm(active: boolean) {
        const s = stubs({ systemctl: `[[ $1 == is-active ]] && exit ${active ? 0 : 3}; exit 0` });
        const conf = path.join(s.bin, "conf.d", "90-kubeadm-pulumi-cni.conf");
        const once = () => bash("prepare_network_manager", { KP_PATH_PREFIX: s.bin, KP_NM_CONF: conf }, ["prepare-common.sh"]);
        return { s, conf, once };
    }

    it("running: writes the unmanaged-devices file once and reloads NetworkManager; a second run changes nothing", () => {
        const { s, conf, once } = nm(true);
        const first = once();
        expect(first.stderr).toBe("");
        expect(first.stdout).toBe(`networkmanager: changed (wrote ${conf} (CNI interfaces unmanaged))\n`);
        const text = fs.readFileSync(conf, "utf8");
        expect(text.split("\n")[1]).toBe("[keyfile]");
        const devices = /^unmanaged-devices=(.*)$/m.exec(text)![1].split(";");
        expect(devices).toEqual(expect.arrayContaining(["interface-name:cni0", "interface-name:flannel*", "interface-name:cali*", "interface-name:vxlan.calico", "interface-name:cilium_*"]));
        expect(devices.every((d) => d.startsWith("interface-name:"))).toBe(true);
        expect(once().stdout).toBe("networkmanager: unchanged\n");
        expect(s.calls().filter((c) => c.includes("reload"))).toEqual(["systemctl reload NetworkManager"]);
    });

    it("not running: nothing written", () => {
        const { conf, once } = nm(false);
        expect(once().stdout).toBe("networkmanager: unchanged\n");
        expect(fs.existsSync(conf)).toBe(false);
    });
});

describe("preflight says what prepare will change on a RHEL-family host (warnings, not problems)", () => {
    it("SELinux enforcing and firewalld running are announced; the host still passes", () => {
        const s = stubs({ getenforce: "echo Enforcing", "firewall-cmd": '[[ $1 == --state ]] && echo running' });
        const script = renderScript("preflight", {
            NODE_NAME: "n1", IS_CONTROL_PLANE: false, KUBERNETES_MINOR: "1.36", MIN_CPUS: 1, MIN_MEMORY_MB: 1, PORTS: [],
            IGNORE: ["kernel", "cgroup", "cpu", "memory", "hostname", "command", "systemd", "runtime", "port"], SOURCES: [], DISK: [],
        }, { action: "run", lib: SCRIPTS_DIR });
        const r = run("bash", ["-c", script, "preflight"], { KP_OS_RELEASE: osRelease(SUPPORTED[7][1]), KP_PATH_PREFIX: s.bin });
        expect(r.status).toBe(0);
        expect(r.stderr).toContain("warning: SELinux is enforcing: prepare will set it permissive (setenforce 0 and SELINUX=permissive in /etc/selinux/config)");
        expect(r.stderr).toContain("warning: firewalld is running: prepare will open this node's ports and trust the pod and service networks (reset closes them again)");
        expect(JSON.parse(r.stdout).os.family).toBe("rhel");
    });
});

describe("one supported list", () => {
    it("the README and docs/os-matrix.md name the systems lib.sh supports, in its words", () => {
        const list = bash('printf "%s" "$KP_SUPPORTED_OS"').stdout;
        expect(list).toBe("Debian 12/13, Ubuntu 22.04/24.04/26.04, or RHEL/Rocky/AlmaLinux/CentOS Stream 9/10");
        expect(fs.readFileSync(path.join(__dirname, "..", "README.md"), "utf8")).toContain(`- ${list}, with systemd`);
        expect(fs.readFileSync(path.join(__dirname, "..", "docs", "os-matrix.md"), "utf8")).toContain(`supported: ${list}.`);
        // every system the table of this file calls supported is in the list's words
        for (const [name] of SUPPORTED) expect(list).toContain(name.split(" ")[0]);
    });
});
