/**
 * `offline.packages` on a real host: the stand-in package repository packed
 * as the README says (`tar -C <dir> -czf packages.tar.gz .`), staged in the
 * SSH user's home the way the copy step leaves it (here over ssh: the
 * harness does not play the command provider's SFTP copy), then the
 * program's own scripts, preflight and prepare steps over real SSH. The host
 * has no other package source for Kubernetes: apt installs from the
 * unpacked `file:` repository (through its `_apt` sandbox), the staged copy
 * is removed, and a second prepare changes nothing.
 *
 * Not here: `offline.images` (the stand-in ctr has no `images import`).
 */
import { execFileSync, spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { RawConfig } from "../../components/config";
import { OFFLINE_REPO_DIR } from "../../components/offline";
import { EngineState, rawConfig, runProgram } from "../harness";
import { tier } from "../tier";
import { HostStepRun, hostStepsExecutor } from "./host-steps";
import { Sandbox, SandboxHost, sandboxAvailable, startSandbox } from "./sandbox";

const sandbox = tier("sandbox", "tests/hosts/offline.test.ts", sandboxAvailable());
const REPO_ROOT = path.resolve(__dirname, "../..");

sandbox.describe("offline.packages on a real host (stand-in Kubernetes packages)", () => {
    let sb: Sandbox;
    let host: SandboxHost;
    let archive: string;
    let tmp: string;
    let state: EngineState = new Map();
    const ran: HostStepRun[] = [];

    const execute = hostStepsExecutor(() => sb, () => host, ran);

    const config = (): RawConfig => rawConfig({
        hosts: [{ name: host.name, address: host.address, roles: ["control-plane", "worker"] }],
        ssh: { user: "kube", privateKey: sb.privateKey },
        preflight: { ignore: ["cgroup", "disk"] },
        offline: { packages: archive },
    } as Partial<RawConfig>);

    const sh = async (command: string) => (await sb.ssh(host, "root", command)).stdout;

    beforeAll(async () => {
        sandbox.require();
        const out = execFileSync("bash", [path.join(REPO_ROOT, "tests/hosts/standins/build.sh"), "1.36.4", "2.2.6"], { encoding: "utf8" });
        const repoDir = out.trim().split("\n").pop()!;
        tmp = fs.mkdtempSync(path.join(os.tmpdir(), "kubeadm-pulumi-offline-host-"));
        archive = path.join(tmp, "packages.tar.gz");
        execFileSync("tar", ["-C", repoDir, "-czf", archive, "."]);
        sb = await startSandbox(["px-off"]);
        [host] = sb.hosts;
    }, 20 * 60 * 1000);

    afterAll(async () => {
        await sb?.stop();
        if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    }, 60000);

    test("apt installs from the unpacked archive; the staged copy is removed; a second prepare changes nothing", async () => {
        // What the copy step (CopyToRemote, SFTP as kube) leaves in kube's home.
        const run0 = await runProgram(config(), { preview: true });
        const copy = run0.byName("px-off-offline-packages");
        const remotePath = copy.inputs.remotePath as string;
        const sha = crypto.createHash("sha256").update(fs.readFileSync(archive)).digest("hex");
        expect(remotePath).toBe(`.kubeadm-pulumi-offline-${sha.slice(0, 12)}-packages.tar.gz`);
        const put = spawnSync("ssh", [...sb.sshArgs(host, "kube"), `cat > ${remotePath}`], { input: fs.readFileSync(archive), timeout: 120000 });
        expect(put.status).toBe(0);

        const run = await runProgram(config(), { execute, state });
        state = run.state;
        expect(run.failures.map((f) => `${f.name}: ${f.error.message.split("\n").slice(-8).join("\n")}`)).toEqual([]);
        const prepare = ran.find((r) => r.name === "px-off-prepare")!;
        expect(prepare.stdout).toContain(`offline-packages: changed (unpacked ${remotePath} to ${OFFLINE_REPO_DIR})`);
        expect(prepare.stderr).not.toMatch(/unsandboxed|_apt/);
        expect(await sh("cat /etc/apt/sources.list.d/kubeadm-pulumi-local.list")).toBe(`deb [trusted=yes] file://${OFFLINE_REPO_DIR} ./\n`);
        expect(await sh("ls /etc/apt/sources.list.d/")).not.toMatch(/kubernetes\.list|docker\.list/);
        const pkgs = await sh("dpkg-query -W -f='${Package}=${Version}\\n' kubeadm kubelet kubectl containerd.io");
        expect(pkgs).toContain("kubeadm=1.36.4-1.1");
        expect(pkgs).toContain("containerd.io=2.2.6-1~debian.12~bookworm");
        expect(await sh(`ls -a ~kube/ | grep kubeadm-pulumi-offline || echo none`)).toBe("none\n");

        const again = await sb.ssh(host, "kube", (state.get("px-off-prepare")!.inputs as { create: string }).create);
        expect(again.code).toBe(0);
        expect(again.stdout).toContain("offline-packages: unchanged");
        expect(again.stdout).toContain("packages: unchanged");
    });
});
