/**
 * `proxy` on a real host: one sandbox host (Debian 12, systemd, sshd, apt;
 * STAND-IN Kubernetes packages and containerd from the local repository, see
 * lifecycle.test.ts) whose only way to that repository in this test is
 * through a forward proxy on this machine. The program's own scripts,
 * preflight and prepare steps run over real SSH (the other steps of the
 * cluster are not run here: no host takes them).
 *
 * Checked for real: apt fetched the index and the packages through the
 * proxy; the running containerd has the proxy environment with the
 * computed no-proxy list; a second prepare changes nothing and does not
 * restart containerd; removing the setting removes the files and restarts
 * containerd without it; preflight names the proxy when it does not answer.
 */
import { execFileSync } from "child_process";
import * as http from "http";
import * as net from "net";
import * as path from "path";
import { RawConfig } from "../../components/config";
import { EngineState, rawConfig, runProgram } from "../harness";
import { tier } from "../tier";
import { HostStepRun, hostStepsExecutor } from "./host-steps";
import { Sandbox, SandboxHost, sandboxAvailable, startSandbox } from "./sandbox";
import { serveDirectory } from "./serve";

const sandbox = tier("sandbox", "tests/hosts/proxy.test.ts", sandboxAvailable());
const REPO_ROOT = path.resolve(__dirname, "../..");


/** A plain HTTP forward proxy (absolute-URI requests) that records every URL it fetched. */
function forwardProxy(address: string): Promise<{ server: http.Server; port: number; seen: string[] }> {
    const seen: string[] = [];
    const server = http.createServer((req, res) => {
        const url = req.url ?? "";
        seen.push(`${req.method} ${url}`);
        if (!/^http:\/\//.test(url)) {
            res.writeHead(400).end("not a proxy request");
            return;
        }
        const up = http.request(url, { method: req.method, headers: { ...req.headers, connection: "close" } }, (r) => {
            res.writeHead(r.statusCode ?? 502, r.headers);
            r.pipe(res);
        });
        up.on("error", () => res.headersSent ? res.destroy() : res.writeHead(502).end());
        req.pipe(up);
    });
    server.on("connect", (_req, socket: net.Socket) => socket.end("HTTP/1.1 403 Forbidden\r\n\r\n"));
    return new Promise((resolve) => server.listen(0, address, () => resolve({ server, port: (server.address() as { port: number }).port, seen })));
}

sandbox.describe("proxy on a real host (stand-in Kubernetes packages)", () => {
    let sb: Sandbox;
    let host: SandboxHost;
    let repo: { server: http.Server; port: number };
    let proxy: { server: http.Server; port: number; seen: string[] };
    let state: EngineState = new Map();
    const ran: HostStepRun[] = [];

    const execute = hostStepsExecutor(() => sb, () => host, ran);

    function config(withProxy: boolean): RawConfig {
        return rawConfig({
            hosts: [{ name: host.name, address: host.address, roles: ["control-plane", "worker"] }],
            ssh: { user: "kube", privateKey: sb.privateKey },
            packages: { localRepository: { apt: `http://${sb.gateway}:${repo.port}/ ./` } },
            preflight: { ignore: ["cgroup", "disk"] },
            ...(withProxy ? { proxy: { http: `http://${sb.gateway}:${proxy.port}`, noProxy: ["registry.px.internal"] } } : {}),
        } as Partial<RawConfig>);
    }

    async function up(withProxy: boolean) {
        const mark = ran.length;
        const run = await runProgram(config(withProxy), { execute, state });
        state = run.state;
        return { run, ran: ran.slice(mark) };
    }

    const sh = async (command: string) => {
        const r = await sb.ssh(host, "root", command);
        if (r.code !== 0) throw new Error(`${command}: exit ${r.code}\n${r.stderr}`);
        return r.stdout;
    };
    /** The running containerd's PID and environment. */
    const containerd = async () => {
        const pid = (await sh("systemctl show -p MainPID --value containerd")).trim();
        const env = (await sh(`tr '\\0' '\\n' </proc/${pid}/environ | grep -i _proxy= || true`)).trim();
        return { pid, env };
    };

    beforeAll(async () => {
        sandbox.require();
        const out = execFileSync("bash", [path.join(REPO_ROOT, "tests/hosts/standins/build.sh"), "1.36.4", "2.2.6"], { encoding: "utf8" });
        sb = await startSandbox(["px-cp"]);
        [host] = sb.hosts;
        repo = await serveDirectory(out.trim().split("\n").pop()!, sb.gateway);
        proxy = await forwardProxy(sb.gateway);
    }, 20 * 60 * 1000);

    afterAll(async () => {
        repo?.server.close();
        proxy?.server.close();
        await sb?.stop();
    }, 60000);

    test("up with a proxy: apt went through it, containerd runs with the proxy and the cluster's no-proxy list", async () => {
        const { run, ran: steps } = await up(true);
        expect(run.failures.map((f) => `${f.name}: ${f.error.message.split("\n").slice(-8).join("\n")}`)).toEqual([]);
        expect(steps.map((s) => s.name)).toEqual(["px-cp-scripts", "px-cp-preflight", "px-cp-prepare"]);
        const prepare = steps[2];
        expect(prepare.stdout).toContain("proxy: changed (wrote /etc/apt/apt.conf.d/90kubeadm-pulumi-proxy;wrote /etc/systemd/system/containerd.service.d/http-proxy.conf)");
        // the index and the packages came through the proxy
        expect(proxy.seen).toEqual(expect.arrayContaining([
            expect.stringMatching(new RegExp(`^GET http://${sb.gateway.replace(/\./g, "\\.")}:${repo.port}/(\\./)?(Packages|InRelease|Release)`)),
            expect.stringMatching(/^GET http:\/\/.*\/kubeadm_1\.36\.4.*\.deb$/),
        ]));
        expect(await sh("cat /etc/apt/apt.conf.d/90kubeadm-pulumi-proxy")).toContain(`Acquire::http::Proxy "http://${sb.gateway}:${proxy.port}/";`);
        const { env } = await containerd();
        expect(env).toContain(`HTTP_PROXY=http://${sb.gateway}:${proxy.port}`);
        expect(env).toMatch(new RegExp(`NO_PROXY=localhost,127\\.0\\.0\\.1,10\\.244\\.0\\.0/16,10\\.96\\.0\\.0/12,${host.address.replace(/\./g, "\\.")},\\.svc,\\.cluster\\.local,registry\\.px\\.internal`));
    });

    test("prepare again: nothing changes, containerd is not restarted", async () => {
        const before = await containerd();
        const cmd = (state.get("px-cp-prepare")!.inputs as { create: string }).create;
        const r = await sb.ssh(host, "kube", cmd);
        expect(r.code).toBe(0);
        expect(r.stdout).toContain("proxy: unchanged");
        expect(r.stdout).toContain("containerd: unchanged");
        expect((await containerd()).pid).toBe(before.pid);
    });

    test("preflight names the proxy when it does not answer", async () => {
        proxy.server.close();
        const closedPort = proxy.port;
        const cmd = (state.get("px-cp-preflight")!.inputs as { create: string }).create;
        const r = await sb.ssh(host, "kube", cmd);
        expect(r.code).toBe(1);
        expect(r.stderr).toContain(`cannot reach proxy.http (http://${sb.gateway}:${closedPort}) from this host: no TCP connection to ${sb.gateway} port ${closedPort} within 5 s`);
        proxy = await forwardProxy(sb.gateway);
    });

    test("the setting removed: apt's file and containerd's drop-in go, containerd restarts without the proxy", async () => {
        const before = await containerd();
        const { run, ran: steps } = await up(false);
        expect(run.failures).toEqual([]);
        expect(steps.map((s) => `${s.name}:${s.op}`)).toEqual(["px-cp-preflight:update", "px-cp-prepare:update"]);
        expect(steps[1].stdout).toContain("proxy: changed (removed /etc/apt/apt.conf.d/90kubeadm-pulumi-proxy (no proxy configured);removed /etc/systemd/system/containerd.service.d/http-proxy.conf (no proxy configured))");
        expect(await sh("ls /etc/apt/apt.conf.d/90kubeadm-pulumi-proxy /etc/systemd/system/containerd.service.d 2>&1 || true")).toContain("No such file");
        const after = await containerd();
        expect(after.pid).not.toBe(before.pid);
        expect(after.env).toBe("");
    });
});
