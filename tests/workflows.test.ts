/**
 * The GitHub Actions workflows, checked offline by the real actionlint
 * (built from its Go module by tests/tools/build-actionlint.sh, cached under
 * .cache/actionlint/<version>/; it runs shellcheck on every `run:` script),
 * plus what the workflows promise in docs/ci.md: tests on every push and pull
 * request, a preview of one stack on pull requests with a self-managed
 * backend, the passphrase from a secret, the result commented on the PR.
 * Broken copies of the workflows prove the linter fails where it should.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";

const ROOT = path.join(__dirname, "..");
const WORKFLOWS = path.join(ROOT, ".github", "workflows");
const BUILD = path.join(ROOT, "tests", "tools", "build-actionlint.sh");

let actionlint = "";

/** Go builds actionlint; once built, the cached binary is enough. tests/check-tools.js stops `npm test` without either. */
const pinned = /^VERSION=(v[0-9.]+)$/m.exec(fs.readFileSync(BUILD, "utf8"))![1];
const canLint = spawnSync("sh", ["-c", "command -v go"]).status === 0 || fs.existsSync(path.join(ROOT, ".cache", "actionlint", pinned, "actionlint"));
if (!canLint) console.warn("Go is not installed and actionlint is not built: skipping the actionlint tests of .github/workflows (a partial run)");
const describeLint = canLint ? describe : describe.skip;

beforeAll(() => {
    if (!canLint) return;
    // Cached: instant. Cold: about a minute on 2 cores (.ci/run builds it before npm test).
    const r = spawnSync("bash", [BUILD], { encoding: "utf8", timeout: 600_000 });
    if (r.status !== 0) throw new Error(`building actionlint failed (${r.status ?? r.signal}):\n${r.stderr}`);
    actionlint = r.stdout.trim().split("\n").pop()!;
    expect(fs.existsSync(actionlint)).toBe(true);
}, 600_000);

function lint(files: string[], cwd = ROOT) {
    const r = spawnSync(actionlint, ["-no-color", ...files], { cwd, encoding: "utf8", timeout: 120_000 });
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

const workflowFiles = () => fs.readdirSync(WORKFLOWS).filter((f) => /\.ya?ml$/.test(f)).sort();
const read = (f: string) => fs.readFileSync(path.join(WORKFLOWS, f), "utf8");
const parse = (f: string) => YAML.parse(read(f)) as Record<string, any>;
/** Every step of every job. */
const steps = (wf: Record<string, any>) => Object.values(wf["jobs"] as Record<string, any>).flatMap((j) => (j["steps"] ?? []) as Record<string, any>[]);

describeLint("actionlint on .github/workflows", () => {
    test("the pinned actionlint is the one that runs, and shellcheck is there for run: scripts", () => {
        const v = spawnSync(actionlint, ["-version"], { encoding: "utf8" });
        expect(v.stdout.split("\n")[0]).toBe(pinned);
        expect(spawnSync("sh", ["-c", "command -v shellcheck"]).status).toBe(0);
    });

    test("every workflow passes", () => {
        const files = workflowFiles();
        expect(files).toEqual(["preview.yml", "tests.yml"]);
        const r = lint(files.map((f) => path.join(".github", "workflows", f)));
        expect(r.out).toBe("");
        expect(r.status).toBe(0);
    });

    describe("a broken workflow fails", () => {
        let tmp = "";
        beforeEach(() => {
            tmp = fs.mkdtempSync(path.join(os.tmpdir(), "kp-workflows-"));
            fs.mkdirSync(path.join(tmp, ".github", "workflows"), { recursive: true });
        });
        afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

        /** Lint a copy of `file` with `edit` applied, in a scratch repository. */
        const lintBroken = (file: string, edit: (s: string) => string) => {
            const original = read(file);
            const broken = edit(original);
            expect(broken).not.toBe(original);
            fs.writeFileSync(path.join(tmp, ".github", "workflows", file), broken);
            return lint([path.join(".github", "workflows", file)], tmp);
        };

        test("an unchanged copy passes (the scratch repository itself is fine)", () => {
            expect(lintBroken("tests.yml", (s) => `${s}\n`)).toEqual({ status: 0, out: "" });
        });

        test("a misspelt key", () => {
            const r = lintBroken("tests.yml", (s) => s.replace("runs-on:", "run-on:"));
            expect(r.status).not.toBe(0);
            expect(r.out).toMatch(/unexpected key "run-on" for "job" section/);
            expect(r.out).toMatch(/"runs-on" section is missing in job "test"/);
        });

        test("an undefined context in an expression (secret. instead of secrets.)", () => {
            const r = lintBroken("preview.yml", (s) => s.replace("secrets.PULUMI_CONFIG_PASSPHRASE", "secret.PULUMI_CONFIG_PASSPHRASE"));
            expect(r.status).not.toBe(0);
            expect(r.out).toMatch(/undefined variable "secret"/);
        });

        test("a shell script shellcheck refuses", () => {
            const r = lintBroken("preview.yml", (s) => s.replace('rm -rf "$dir"', "rm -rf $dir/*"));
            expect(r.status).not.toBe(0);
            expect(r.out).toMatch(/shellcheck reported issue.*SC2086/);
        });

        test("a job that needs a job that does not exist", () => {
            const r = lintBroken("tests.yml", (s) => s.replace("    runs-on: ubuntu-24.04", "    needs: [lint]\n    runs-on: ubuntu-24.04"));
            expect(r.status).not.toBe(0);
            expect(r.out).toMatch(/job "test" needs job "lint" which does not exist/);
        });

        test("YAML that does not parse", () => {
            const r = lintBroken("tests.yml", (s) => s.replace("permissions:\n  contents: read", "permissions:\n  contents: read\n contents: [\n"));
            expect(r.status).not.toBe(0);
            expect(r.out).toMatch(/could not parse as YAML/);
        });
    });
});

describe("what the workflows promise (docs/ci.md)", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { devDependencies: Record<string, string>; scripts: Record<string, string> };

    test("every action is pinned to a commit SHA, with the tag it came from", () => {
        for (const f of workflowFiles()) {
            const text = read(f);
            const uses = [...text.matchAll(/^\s*(?:-\s+)?uses:\s*(\S+)(.*)$/gm)];
            expect(uses.length).toBeGreaterThan(0);
            for (const [, ref, rest] of uses) {
                expect(ref).toMatch(/^[\w.-]+\/[\w.-]+@[0-9a-f]{40}$/);
                expect(rest).toMatch(/^\s*# v\d+\.\d+\.\d+$/);
                // The header comment lists the same action, tag and commit.
                const [name, sha] = ref.split("@");
                const tag = rest.trim().slice(2);
                expect(text).toContain(`${name} `);
                expect(text).toMatch(new RegExp(`#\\s+${name.replace("/", "\\/")}\\s+${tag.replace(/\./g, "\\.")}\\s+${sha}`));
            }
        }
    });

    test("tests: on every push and pull request, the README's test command", () => {
        const wf = parse("tests.yml");
        expect(Object.keys(wf["on"]).sort()).toEqual(["pull_request", "push"]);
        expect(wf["on"]["push"]).toBeNull(); // every branch
        expect(wf["on"]["pull_request"]).toBeNull();
        const runs = steps(wf).map((s) => s["run"]).filter(Boolean) as string[];
        expect(runs).toContain("npm ci --no-audit --no-fund");
        expect(runs).toContain("npm test");
        expect(pkg.scripts["test"]).toMatch(/jest/);
    });

    test("preview: pulumi/actions preview --diff on pull requests, commented, self-managed backend, passphrase from a secret", () => {
        const wf = parse("preview.yml");
        expect(Object.keys(wf["on"])).toEqual(["pull_request"]);
        expect(wf["permissions"]).toEqual({ "contents": "read", "pull-requests": "write" });
        const job = wf["jobs"]["preview"];
        // Skipped for forks (no secrets; the preview runs the PR's code) and until a backend is configured.
        expect(job["if"]).toContain("github.event.pull_request.head.repo.full_name == github.repository");
        expect(job["if"]).toContain("vars.PULUMI_BACKEND_URL != ''");
        const action = steps(wf).find((s) => String(s["uses"]).startsWith("pulumi/actions@"))!;
        expect(action).toBeDefined();
        expect(action["with"]).toMatchObject({
            "command": "preview",
            "diff": true,
            "comment-on-pr": true,
            "cloud-url": "${{ vars.PULUMI_BACKEND_URL }}",
            "secrets-provider": "passphrase",
            "stack-name": "${{ vars.PULUMI_STACK || 'prod' }}",
        });
        expect(action["env"]["PULUMI_CONFIG_PASSPHRASE"]).toBe("${{ secrets.PULUMI_CONFIG_PASSPHRASE }}");
        // The CLI the action installs is the devDependency's version.
        expect(String(action["with"]["pulumi-version"])).toBe(pkg.devDependencies["pulumi"]);
        // npm ci before the preview (the program needs its dependencies), and the stack exists in the repo.
        const names = steps(wf).map((s) => s["run"] ?? s["uses"]);
        expect(names.indexOf("npm ci --no-audit --no-fund")).toBeLessThan(names.findIndex((n) => String(n).startsWith("pulumi/actions@")));
        expect(fs.existsSync(path.join(ROOT, "Pulumi.prod.yaml"))).toBe(true);
    });

    test("no secret is set at workflow or job level, only on the step that needs it", () => {
        for (const f of workflowFiles()) {
            const wf = parse(f);
            expect(JSON.stringify(wf["env"] ?? {})).not.toContain("secrets.");
            for (const job of Object.values(wf["jobs"] as Record<string, any>)) expect(JSON.stringify(job["env"] ?? {})).not.toContain("secrets.");
            for (const s of steps(wf)) {
                if (JSON.stringify(s).includes("secrets.")) expect(String(s["uses"])).toMatch(/^pulumi\/actions@/);
            }
        }
    });
});
