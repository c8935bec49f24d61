/**
 * `proxy` and the sources preflight checks: the computed no-proxy list and
 * the files rendered from it; the prepare and uninstall functions in real
 * bash against files in a temporary directory, with systemctl stubbed (what
 * they write, that a second run changes nothing, that removing the setting
 * restores the host's files byte for byte); and under Pulumi mocks, which
 * steps a proxy change re-runs.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as TOML from "smol-toml";
import { parseClusterConfig, RawConfig } from "../components/config";
import { bypassesProxy, noProxyList, proxyFor, renderAptProxyConf, renderContainerdProxyDropIn } from "../components/proxy";
import { shellQuote } from "../components/scripts";
import { sources } from "../components/sources";
import { rawConfig, reveal, runProgram } from "./harness";

const SCRIPTS = path.join(__dirname, "..", "components", "scripts");
const PROXY = { http: "http://proxy.example:3128", https: "http://proxy.example:3128", noProxy: ["registry.lan", ".corp.example", "10.1.0.0/16"] };

function spec(overrides: Partial<RawConfig> = {}) {
    return parseClusterConfig(rawConfig({ proxy: PROXY, ...overrides } as Partial<RawConfig>), "demo");
}

describe("the no-proxy list and the rendered files", () => {
    test("always holds loopback, the pod and service subnets, every node address, the API address and the cluster domains; then the user's", () => {
        const s = spec({ apiServer: { address: "k8s.example.internal" } } as Partial<RawConfig>);
        expect(noProxyList(s)).toEqual([
            "localhost", "127.0.0.1", "10.244.0.0/16", "10.96.0.0/12",
            "192.0.2.10", "10.0.0.10", "192.0.2.11", "10.0.0.11", "192.0.2.12", "10.0.0.12",
            "k8s.example.internal", ".svc", ".cluster.local",
            "registry.lan", ".corp.example", "10.1.0.0/16",
        ]);
    });

    test("matching works like Go's and curl's NO_PROXY: exact host, domain and subdomains, IP in CIDR", () => {
        const list = noProxyList(spec());
        expect(bypassesProxy("registry.lan", list)).toBe(true);
        expect(bypassesProxy("a.b.corp.example", list)).toBe(true);
        expect(bypassesProxy("corp.example", list)).toBe(true);
        expect(bypassesProxy("notcorp.example", list)).toBe(false);
        expect(bypassesProxy("10.1.200.3", list)).toBe(true);
        expect(bypassesProxy("10.2.0.1", list)).toBe(false);
        expect(bypassesProxy("pkgs.k8s.io", list)).toBe(false);
        expect(proxyFor("https://mirror.corp.example/v2/", spec().proxy, list)).toBe("");
        expect(proxyFor("https://pkgs.k8s.io/", spec().proxy, list)).toBe("http://proxy.example:3128");
        expect(proxyFor("https://pkgs.k8s.io/", { http: "http://p:1", noProxy: [] }, list)).toBe("");
    });

    test("containerd's drop-in is valid systemd syntax with one quoted Environment= per variable", () => {
        const s = spec();
        const dropIn = renderContainerdProxyDropIn(s.proxy!, noProxyList(s));
        const lines = dropIn.trimEnd().split("\n");
        expect(lines[0]).toMatch(/^# Managed by kubeadm-pulumi/);
        expect(lines.slice(1)).toEqual([
            "[Service]",
            `Environment="HTTP_PROXY=http://proxy.example:3128"`,
            `Environment="HTTPS_PROXY=http://proxy.example:3128"`,
            `Environment="NO_PROXY=${noProxyList(s).join(",")}"`,
        ]);
        // systemd-analyze would be the real check; parse it as the ini it is instead (TOML accepts this subset)
        expect(() => TOML.parse(dropIn.split("\n").filter((l) => !l.startsWith("#")).join("\n").replace(/^Environment=/gm, "Environment_=").replace(/^(Environment_=.*)$/gm, (l, x, i) => l.replace("Environment_", `Environment_${i}`)))).not.toThrow();
    });

    test("apt gets a proxy per scheme and DIRECT for the user's plain hosts (apt has no domain or CIDR matching)", () => {
        expect(renderAptProxyConf(spec().proxy!).split("\n").slice(1)).toEqual([
            `Acquire::http::Proxy "http://proxy.example:3128/";`,
            `Acquire::http::Proxy::registry.lan "DIRECT";`,
            `Acquire::https::Proxy "http://proxy.example:3128/";`,
            `Acquire::https::Proxy::registry.lan "DIRECT";`,
            "",
        ]);
    });

    test("preflight's sources: every configured one, the proxy itself direct, the others through the proxy unless exempt", () => {
        const s = spec({
            packages: { localRepository: { apt: "http://10.0.0.5/debs ./", rpm: "http://10.0.0.5/rpms/", keyUrl: "https://keys.corp.example/k.gpg" } },
            kubeadm: { imageRepository: "registry.example.com:5000/k8s" },
            containerd: { registries: [{ registry: "docker.io", mirrors: ["https://mirror.gcr.example"] }, { registry: "10.0.0.7:5443", plainHttp: true }] },
        } as Partial<RawConfig>);
        expect(sources(s)).toEqual([
            { family: "any", label: "proxy.http", url: "http://proxy.example:3128", via: "" },
            { family: "debian", label: "packages.localRepository.apt", url: "http://10.0.0.5/debs", via: "http://proxy.example:3128" },
            { family: "rhel", label: "packages.localRepository.rpm", url: "http://10.0.0.5/rpms/", via: "http://proxy.example:3128" },
            { family: "any", label: "packages.localRepository.keyUrl", url: "https://keys.corp.example/k.gpg", via: "" },
            { family: "any", label: "containerd.registries[0].mirrors[0]", url: "https://mirror.gcr.example", via: "http://proxy.example:3128" },
            { family: "any", label: "containerd.registries[1].registry", url: "http://10.0.0.7:5443/v2/", via: "http://proxy.example:3128" },
            { family: "any", label: "kubeadm.imageRepository", url: "https://registry.example.com:5000/v2/", via: "http://proxy.example:3128" },
        ]);
        // the add-ons' registry too (the same registry as the image repository: checked once)
        const withAddons = spec({ kubeadm: { imageRepository: "registry.example.com:5000/k8s" }, addons: { imageRegistry: "registry.example.com:5000/mirror" } } as Partial<RawConfig>);
        expect(sources(withAddons).map((x) => x.label)).toEqual(["proxy.http", "kubeadm.imageRepository"]);
        const otherAddons = spec({ addons: { imageRegistry: "addons.example.com/mirror" } } as Partial<RawConfig>);
        expect(sources(otherAddons).map((x) => `${x.label} ${x.url}`)).toEqual(["proxy.http http://proxy.example:3128", "addons.imageRegistry https://addons.example.com/v2/"]);
        // nothing configured: nothing checked (the upstream defaults are not checked)
        expect(sources(parseClusterConfig(rawConfig(), "demo"))).toEqual([]);
    });
});

// ---------------------------------------------------------------------------
// The scripts, in real bash, on files in a temporary directory.

describe("prepare_proxy and uninstall in real bash (systemctl stubbed)", () => {
    let dir: string;
    beforeEach(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "kubeadm-pulumi-proxy-"));
    });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    /** Run `code` with lib.sh, prepare-common.sh and the family file sourced, the proxy files under `dir`, and the proxy variables of `withProxy`. */
    function bash(family: "debian" | "rhel", withProxy: boolean, code: string, overrides: Record<string, string> = {}) {
        const s = spec();
        const base: Record<string, string> = withProxy
            ? { PROXY_HTTP: PROXY.http, PROXY_HTTPS: PROXY.https, NO_PROXY_LIST: noProxyList(s).join(","), APT_PROXY_CONF: renderAptProxyConf(s.proxy!), CONTAINERD_PROXY_DROPIN: renderContainerdProxyDropIn(s.proxy!, noProxyList(s)) }
            : { PROXY_HTTP: "", PROXY_HTTPS: "", NO_PROXY_LIST: "", APT_PROXY_CONF: "", CONTAINERD_PROXY_DROPIN: "" };
        const vars = { ...base, ...overrides };
        const script = [
            "set -euo pipefail", "shopt -s inherit_errexit",
            ...Object.entries(vars).map(([k, v]) => `readonly ${k}=${shellQuote(v)}`),
            `source ${shellQuote(path.join(SCRIPTS, "lib.sh"))}`,
            `KP_APT_PROXY_FILE=${shellQuote(`${dir}/apt.conf.d/90kubeadm-pulumi-proxy`)}`,
            `KP_CONTAINERD_PROXY_DROPIN=${shellQuote(`${dir}/system/containerd.service.d/http-proxy.conf`)}`,
            `KP_DNF_CONF=${shellQuote(`${dir}/dnf.conf`)}`,
            `source ${shellQuote(path.join(SCRIPTS, "prepare-common.sh"))}`,
            `source ${shellQuote(path.join(SCRIPTS, `prepare-${family}.sh`))}`,
            code,
        ].join("\n");
        // systemctl is run through `timeout`, so the stub is a program first in PATH (lib.sh's KP_PATH_PREFIX)
        const bin = path.join(dir, "bin");
        fs.mkdirSync(bin, { recursive: true });
        fs.writeFileSync(path.join(bin, "systemctl"), `#!/bin/sh\nprintf 'systemctl %s\\n' "$*" >>${shellQuote(`${dir}/calls`)}\n`, { mode: 0o755 });
        const r = spawnSync("bash", ["-c", script, "test"], { encoding: "utf8", timeout: 60_000, env: { ...process.env, KP_PATH_PREFIX: bin } });
        const calls = fs.existsSync(`${dir}/calls`) ? fs.readFileSync(`${dir}/calls`, "utf8") : "";
        fs.rmSync(`${dir}/calls`, { force: true });
        return { ...r, calls };
    }
    const read = (f: string) => (fs.existsSync(path.join(dir, f)) ? fs.readFileSync(path.join(dir, f), "utf8") : undefined);

    test("apt host: writes apt's file and containerd's drop-in, reloads systemd, flags containerd for a restart; a second run changes nothing", () => {
        const first = bash("debian", true, `prepare_proxy; echo "restart=$CONTAINERD_PROXY_CHANGED http_proxy=$http_proxy"; env | grep -c '^no_proxy=.*10.244.0.0/16'`);
        expect(first.stderr).toBe("");
        expect(first.status).toBe(0);
        expect(first.stdout).toContain(`proxy: changed (wrote ${dir}/apt.conf.d/90kubeadm-pulumi-proxy;wrote ${dir}/system/containerd.service.d/http-proxy.conf)`);
        expect(first.stdout).toContain("restart=true http_proxy=http://proxy.example:3128\n1\n");
        expect(first.calls).toBe("systemctl daemon-reload\n");
        expect(read("apt.conf.d/90kubeadm-pulumi-proxy")).toBe(renderAptProxyConf(spec().proxy!));
        expect(read("system/containerd.service.d/http-proxy.conf")).toContain(`Environment="HTTPS_PROXY=http://proxy.example:3128"`);

        const again = bash("debian", true, `prepare_proxy; echo "restart=$CONTAINERD_PROXY_CHANGED"`);
        expect(again.stdout).toBe("proxy: unchanged\nrestart=false\n");
        expect(again.calls).toBe("");
    });

    test("apt host: the setting removed, prepare removes both files (and restarts containerd); a drop-in that is not ours stays", () => {
        bash("debian", true, "prepare_proxy");
        const off = bash("debian", false, `prepare_proxy; echo "restart=$CONTAINERD_PROXY_CHANGED"; echo "http_proxy=\${http_proxy:-unset}"`);
        expect(off.stdout).toContain("proxy: changed (removed");
        expect(off.stdout).toContain("restart=true\nhttp_proxy=unset\n");
        expect(read("apt.conf.d/90kubeadm-pulumi-proxy")).toBeUndefined();
        expect(read("system/containerd.service.d/http-proxy.conf")).toBeUndefined();
        fs.mkdirSync(path.join(dir, "system/containerd.service.d"), { recursive: true });
        fs.writeFileSync(path.join(dir, "system/containerd.service.d/http-proxy.conf"), "[Service]\nEnvironment=HTTP_PROXY=http://mine:1\n");
        expect(bash("debian", false, "prepare_proxy").stdout).toBe("proxy: unchanged\n");
        expect(read("system/containerd.service.d/http-proxy.conf")).toContain("mine");
    });

    test("dnf host: proxy= right after [main] under a marker; the same run twice changes nothing; removing it restores dnf.conf byte for byte", () => {
        const original = "# dnf.conf of the host\n[main]\ngpgcheck=1\ninstallonly_limit=3\n\n[other]\nx=1\n";
        fs.writeFileSync(path.join(dir, "dnf.conf"), original, { mode: 0o644 });
        const on = bash("rhel", true, "prepare_proxy");
        expect(on.stderr).toBe("");
        expect(on.stdout).toContain(`set proxy=http://proxy.example:3128 in ${dir}/dnf.conf`);
        expect(read("dnf.conf")).toBe("# dnf.conf of the host\n[main]\n# kubeadm-pulumi: proxy from the stack config (removed with it)\nproxy=http://proxy.example:3128\ngpgcheck=1\ninstallonly_limit=3\n\n[other]\nx=1\n");
        expect(read("apt.conf.d/90kubeadm-pulumi-proxy")).toBeUndefined();
        expect(bash("rhel", true, "prepare_proxy").stdout).toBe("proxy: unchanged\n");
        const off = bash("rhel", false, "prepare_proxy");
        expect(off.stdout).toContain("removed the proxy from");
        expect(read("dnf.conf")).toBe(original);
        expect(bash("rhel", false, "prepare_proxy").stdout).toBe("proxy: unchanged\n");
    });

    test("dnf host without a dnf.conf gets one with only [main] and the proxy", () => {
        bash("rhel", true, "prepare_proxy");
        expect(read("dnf.conf")).toBe("[main]\n# kubeadm-pulumi: proxy from the stack config (removed with it)\nproxy=http://proxy.example:3128\n");
    });

    test("uninstall (kp_remove_proxy_config) removes every proxy file and marked line, and restarts a running containerd", () => {
        const original = "[main]\ngpgcheck=1\n";
        fs.writeFileSync(path.join(dir, "dnf.conf"), original);
        bash("rhel", true, "prepare_proxy");
        bash("debian", true, "prepare_proxy");
        const r = bash("debian", false, "kp_remove_proxy_config");
        expect(r.status).toBe(0);
        expect(r.stdout).toContain("removed the proxy from");
        expect(r.stdout).toContain("restarted containerd without the proxy");
        expect(r.calls).toBe("systemctl daemon-reload\nsystemctl is-active --quiet containerd\nsystemctl restart containerd\n");
        expect(read("dnf.conf")).toBe(original);
        expect(read("apt.conf.d/90kubeadm-pulumi-proxy")).toBeUndefined();
        expect(read("system/containerd.service.d/http-proxy.conf")).toBeUndefined();
        expect(bash("debian", false, "kp_remove_proxy_config").stdout).toBe("");
    });

    test("proxy files without a proxy URL are refused by prepare's input check", () => {
        const vars = { KUBERNETES_VERSION: "1.36.4", KUBERNETES_MINOR: "1.36", LOCAL_APT_SOURCE: "", LOCAL_RPM_BASEURL: "" };
        expect(bash("debian", false, "prepare_check_inputs; echo ok", vars).stdout).toBe("ok\n");
        expect(bash("debian", true, "prepare_check_inputs; echo ok", vars).stdout).toBe("ok\n");
        const r = bash("debian", false, "prepare_check_inputs", { ...vars, APT_PROXY_CONF: "x" });
        expect(r.status).toBe(1);
        expect(r.stderr).toContain("error: proxy settings without a proxy URL");
    });
});

// ---------------------------------------------------------------------------

describe("what a proxy change re-runs (mocks)", () => {
    test("setting the proxy updates every host's preflight and prepare in place, and nothing else", async () => {
        const before = await runProgram(rawConfig());
        const after = await runProgram(rawConfig({ proxy: PROXY } as Partial<RawConfig>), { state: before.state });
        expect(after.errors).toEqual([]);
        const changed = after.operations.filter((o) => o.op !== "same").map((o) => `${o.name}:${o.op}`).sort();
        expect(changed).toEqual(["cp-1-preflight:update", "cp-1-prepare:update", "worker-1-preflight:update", "worker-1-prepare:update", "worker-2-preflight:update", "worker-2-prepare:update"]);
        const prepare = reveal<string>(after.byName("worker-1-prepare").inputs.create);
        expect(prepare).toContain("readonly PROXY_HTTPS='http://proxy.example:3128'");
        expect(prepare).toMatch(/readonly NO_PROXY_LIST='localhost,127\.0\.0\.1,10\.244\.0\.0\/16,10\.96\.0\.0\/12,192\.0\.2\.10,10\.0\.0\.10,.*,\.svc,\.cluster\.local,registry\.lan,\.corp\.example,10\.1\.0\.0\/16'/);
    });
});
