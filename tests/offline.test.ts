/**
 * `offline`: the config checks; under Pulumi mocks, one CopyToRemote per
 * archive and host before that host's prepare, and prepare's variables; and
 * prepare's offline functions in real bash (real tar and sha256sum; getent
 * and ctr stubbed) on real archives in a temporary directory.
 */
import { spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ConfigError, parseClusterConfig, RawConfig } from "../components/config";
import { OFFLINE_REPO_DIR, offlineCopies } from "../components/offline";
import { shellQuote } from "../components/scripts";
import * as pulumi from "@pulumi/pulumi";
import { isSecretValue, rawConfig, reveal, runProgram } from "./harness";

const SCRIPTS = path.join(__dirname, "..", "components", "scripts");
let dir: string;
beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "kubeadm-pulumi-offline-"));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A .tar.gz of a directory holding `files`, made by the real tar the way the README says. */
function archive(name: string, files: Record<string, string>): string {
    const src = fs.mkdtempSync(path.join(dir, "src-"));
    for (const [f, content] of Object.entries(files)) {
        fs.mkdirSync(path.dirname(path.join(src, f)), { recursive: true });
        fs.writeFileSync(path.join(src, f), content);
    }
    const out = path.join(dir, name);
    const r = spawnSync("tar", ["-C", src, "-czf", out, "."], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(r.stderr);
    return out;
}
const sha = (f: string) => crypto.createHash("sha256").update(fs.readFileSync(f)).digest("hex");

function problems(offline: unknown, extra: Partial<RawConfig> = {}): string {
    try {
        parseClusterConfig(rawConfig({ offline, ...extra } as Partial<RawConfig>), "demo");
    } catch (e) {
        if (e instanceof ConfigError) return e.message;
        throw e;
    }
    return "";
}

describe("offline config", () => {
    test("files are hashed; problems name the path and the fix", () => {
        const pkgs = archive("packages.tar.gz", { Packages: "" });
        const img = path.join(dir, "images.tar");
        fs.writeFileSync(img, "not really an image archive");
        const spec = parseClusterConfig(rawConfig({ offline: { packages: pkgs, images: [img, img] } } as Partial<RawConfig>), "demo");
        expect(spec.offline).toEqual({ packages: { path: pkgs, sha256: sha(pkgs) }, images: [{ path: img, sha256: sha(img) }] });

        expect(problems({ packages: dir })).toContain(`offline.packages: "${dir.slice(0, 57)}`);
        expect(problems({ packages: path.join(dir, "nope.tar.gz") })).toContain("does not exist (relative paths are relative to the Pulumi project directory)");
        expect(problems({ packages: path.join(dir, "repo.zip") })).toContain("is not a .tar, .tar.gz or .tgz archive: pack the repository directory, e.g. `tar -C ./repo -czf packages.tar.gz .`");
        expect(problems({ images: "x.tar" })).toContain("offline.images: must be a list of image archive paths");
        expect(problems({ images: [dir] })).toContain("offline.images[0]: ");
        expect(problems({})).toContain("offline: needs packages and/or images");
        expect(problems({ pakages: pkgs })).toContain(`offline.pakages: unknown setting "pakages": did you mean "packages"?`);
        expect(problems({ packages: pkgs }, { packages: { localRepository: { apt: "http://10.0.0.5/debs ./" } } } as Partial<RawConfig>))
            .toContain("packages.localRepository: cannot be combined with offline.packages");
    });
});

describe("offline under mocks", () => {
    test("one copy per archive and host, into the SSH user's home, before that host's prepare; prepare gets the file: repository and the hashes", async () => {
        const pkgs = archive("packages.tar.gz", { Packages: "" });
        const img = path.join(dir, "control plane images.tar");
        fs.writeFileSync(img, "images");
        const raw = rawConfig({ offline: { packages: pkgs, images: [img] } } as Partial<RawConfig>);
        const run = await runProgram(raw);
        expect(run.errors).toEqual([]);
        const copies = run.resources.filter((r) => r.type === "command:remote:CopyToRemote").map((r) => r.name).sort();
        expect(copies).toEqual(["cp-1-offline-image-0", "cp-1-offline-packages", "worker-1-offline-image-0", "worker-1-offline-packages", "worker-2-offline-image-0", "worker-2-offline-packages"]);
        const copy = run.byName("worker-1-offline-image-0");
        const inputs = reveal<Record<string, unknown>>(copy.inputs);
        expect(inputs.remotePath).toBe(`.kubeadm-pulumi-offline-${sha(img).slice(0, 12)}-control_plane_images.tar`);
        // (mocks get the FileAsset itself; its path is a promise)
        expect(copy.inputs.source).toBeInstanceOf(pulumi.asset.FileAsset);
        expect(await (copy.inputs.source as pulumi.asset.FileAsset).path).toBe(img);
        expect(isSecretValue(copy.inputs.connection)).toBe(true);
        expect((reveal<{ host: string }>(inputs.connection)).host).toBe("192.0.2.11");
        expect(copy.dependsOn).toEqual(["worker-1-scripts"]);
        expect(run.byName("worker-1-prepare").dependsOn).toEqual(expect.arrayContaining(["worker-1-offline-image-0", "worker-1-offline-packages", "worker-1-preflight"]));
        const create = reveal<string>(run.byName("worker-1-prepare").inputs.create);
        expect(create).toContain(`readonly LOCAL_APT_SOURCE='file://${OFFLINE_REPO_DIR} ./'`);
        expect(create).toContain(`readonly LOCAL_RPM_BASEURL='file://${OFFLINE_REPO_DIR}/'`);
        expect(create).toContain(`readonly OFFLINE_PACKAGES='${sha(pkgs)} .kubeadm-pulumi-offline-${sha(pkgs).slice(0, 12)}-packages.tar.gz'`);
        expect(create).toContain(`readonly -a OFFLINE_IMAGES=('${sha(img)} .kubeadm-pulumi-offline-${sha(img).slice(0, 12)}-control_plane_images.tar')`);
        expect(create).toContain("readonly SSH_USER='ubuntu'");

        // a changed image archive: a new staged name, and prepare's text changes with it
        fs.writeFileSync(img, "other images");
        const spec2 = parseClusterConfig(raw, "demo");
        expect(offlineCopies(spec2)[1].remotePath).toBe(`.kubeadm-pulumi-offline-${sha(img).slice(0, 12)}-control_plane_images.tar`);
    });

    test("the host's offline cache in lib.sh is the parent of OFFLINE_REPO_DIR (uninstall removes it)", () => {
        expect(fs.readFileSync(path.join(SCRIPTS, "lib.sh"), "utf8")).toContain(`KP_OFFLINE_CACHE=\${KP_OFFLINE_CACHE:-${path.dirname(OFFLINE_REPO_DIR)}}`);
    });
});

describe("prepare's offline functions in real bash", () => {
    /** Run `code` after lib.sh, prepare-common.sh and the family file, with a stub getent (home = dir/home) and ctr (records its calls; fails when dir/ctr-fails exists). */
    function bash(family: "debian" | "rhel", vars: { packages?: string; images?: string[] }, code: string) {
        const bin = path.join(dir, "bin");
        fs.mkdirSync(bin, { recursive: true });
        fs.mkdirSync(path.join(dir, "home"), { recursive: true });
        fs.writeFileSync(path.join(bin, "getent"), `#!/bin/sh\n[ "$1 $2" = "passwd kube" ] && echo "kube:x:1000:1000::${dir}/home:/bin/bash"\n`, { mode: 0o755 });
        fs.writeFileSync(path.join(bin, "ctr"), `#!/bin/sh\necho "ctr $*" >>${shellQuote(`${dir}/calls`)}\n[ ! -e ${shellQuote(`${dir}/ctr-fails`)} ]\n`, { mode: 0o755 });
        const script = [
            "set -euo pipefail", "shopt -s inherit_errexit",
            // (exactly prepare's variables that these functions read: none other is set)
            `readonly SSH_USER=kube`,
            `readonly OFFLINE_REPO_DIR=${shellQuote(`${dir}/cache/packages`)}`,
            `readonly OFFLINE_PACKAGES=${shellQuote(vars.packages ?? "")}`,
            `readonly -a OFFLINE_IMAGES=(${(vars.images ?? []).map(shellQuote).join(" ")})`,
            `source ${shellQuote(path.join(SCRIPTS, "lib.sh"))}`,
            `source ${shellQuote(path.join(SCRIPTS, "prepare-common.sh"))}`,
            `source ${shellQuote(path.join(SCRIPTS, `prepare-${family}.sh`))}`,
            code,
        ].join("\n");
        const r = spawnSync("bash", ["-c", script, "test"], { encoding: "utf8", timeout: 60_000, env: { ...process.env, KP_PATH_PREFIX: bin, KP_STATE_DIR: `${dir}/state` } });
        const calls = fs.existsSync(`${dir}/calls`) ? fs.readFileSync(`${dir}/calls`, "utf8") : "";
        fs.rmSync(`${dir}/calls`, { force: true });
        return { ...r, calls };
    }
    /** Stage `file` in the stub home as the copy step would, and return prepare's line for it. */
    function stage(file: string): string {
        const rel = `.kubeadm-pulumi-offline-${sha(file).slice(0, 12)}-${path.basename(file)}`;
        fs.mkdirSync(path.join(dir, "home"), { recursive: true });
        fs.copyFileSync(file, path.join(dir, "home", rel));
        return `${sha(file)} ${rel}`;
    }

    test("packages (apt): unpacked once into a world-readable file: repository, the staged copy removed; a second run changes nothing", () => {
        const line = stage(archive("packages.tar.gz", { Packages: "Package: kubeadm\n", "pool/kubeadm.deb": "deb" }));
        const first = bash("debian", { packages: line }, `prepare_offline_packages; echo "changed=$OFFLINE_REPO_CHANGED"`);
        expect(first.stderr).toBe("");
        expect(first.stdout).toBe(`offline-packages: changed (unpacked ${line.split(" ")[1]} to ${dir}/cache/packages)\nchanged=true\n`);
        expect(fs.readFileSync(`${dir}/cache/packages/Packages`, "utf8")).toBe("Package: kubeadm\n");
        expect(fs.statSync(`${dir}/cache/packages/pool`).mode & 0o777).toBe(0o755);
        expect(fs.statSync(`${dir}/cache/packages/pool/kubeadm.deb`).mode & 0o777).toBe(0o644);
        expect(fs.existsSync(path.join(dir, "home", line.split(" ")[1]))).toBe(false);
        expect(fs.readdirSync(`${dir}/cache`)).toEqual(["packages"]);
        const again = bash("debian", { packages: line }, `prepare_offline_packages; echo "changed=$OFFLINE_REPO_CHANGED"`);
        expect(again.stdout).toBe("offline-packages: unchanged\nchanged=false\n");
    });

    test("packages: a copy that does not match its hash, a missing copy, or an archive that is no repository for this family stops prepare, saying what to do", () => {
        const good = archive("packages.tar.gz", { Packages: "" });
        const line = stage(good);
        fs.appendFileSync(path.join(dir, "home", line.split(" ")[1]), "truncated?");
        const bad = bash("debian", { packages: line }, "prepare_offline_packages");
        expect(bad.status).toBe(1);
        expect(bad.stderr).toContain("is not the archive in the stack config (SHA-256 differs: an interrupted copy?): run pulumi up --replace on this host's offline copy steps");
        fs.rmSync(path.join(dir, "home", line.split(" ")[1]));
        expect(bash("debian", { packages: line }, "prepare_offline_packages").stderr).toContain("is missing (the copy step put it there; prepare removes it once used)");
        const rpmOnly = stage(archive("rpms.tar.gz", { "repodata/repomd.xml": "<repomd/>" }));
        expect(bash("debian", { packages: rpmOnly }, "prepare_offline_packages").stderr).toContain("offline.packages has no Packages index at its top");
        expect(bash("rhel", { packages: stage(good) }, "prepare_offline_packages").stderr).toContain("offline.packages has no repodata/repomd.xml");
        // (rpmOnly's staged copy is still there: the apt run stopped before using it)
        const rhel = bash("rhel", { packages: rpmOnly }, "prepare_offline_packages");
        expect(rhel.stderr).toBe("");
        expect(fs.existsSync(`${dir}/cache/packages/repodata/repomd.xml`)).toBe(true);
    });

    test("images: each archive imported into containerd's k8s.io namespace once, then its copy removed; a failed import stops prepare", () => {
        const a = path.join(dir, "a.tar");
        const b = path.join(dir, "b.tar");
        fs.writeFileSync(a, "a");
        fs.writeFileSync(b, "b");
        const lines = [stage(a), stage(b)];
        const first = bash("debian", { images: lines }, "prepare_offline_images");
        expect(first.stderr).toContain("importing");
        expect(first.stdout).toBe(`offline-images: changed (imported ${lines[0].split(" ")[1]};imported ${lines[1].split(" ")[1]})\n`);
        expect(first.calls).toBe(lines.map((l) => `ctr -n k8s.io images import ${dir}/home/${l.split(" ")[1]}\n`).join(""));
        expect(fs.readdirSync(path.join(dir, "home"))).toEqual([]);
        const again = bash("debian", { images: lines }, "prepare_offline_images");
        expect(again.stdout).toBe("offline-images: unchanged\n");
        expect(again.calls).toBe("");
        const c = path.join(dir, "c.tar");
        fs.writeFileSync(c, "c");
        fs.writeFileSync(`${dir}/ctr-fails`, "");
        const failed = bash("debian", { images: [stage(c)] }, "prepare_offline_images");
        expect(failed.status).toBe(1);
        expect(failed.stderr).toContain("error: ctr -n k8s.io images import");
        expect(fs.existsSync(path.join(dir, "home", `.kubeadm-pulumi-offline-${sha(c).slice(0, 12)}-c.tar`))).toBe(true);
    });

    test("nothing configured: both steps are no-ops", () => {
        const r = bash("rhel", {}, "prepare_offline_packages; prepare_offline_images");
        expect(r.stdout).toBe("offline-packages: unchanged\noffline-images: unchanged\n");
        expect(r.calls).toBe("");
    });
});
