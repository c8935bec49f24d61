/**
 * `npm run bench`: the real program under Pulumi mocks for three cluster
 * sizes. Prints program evaluation time, remote commands per host, SSH
 * sessions per host (commands whose connection targets that host), and the
 * critical path: the longest chain of remote steps through explicit
 * dependencies. Exits non-zero when a target is missed:
 *   - the critical path does not grow with the number of workers;
 *   - evaluation time grows at most linearly with the number of hosts;
 *   - a worker needs at most 5 remote commands to join (scripts, preflight,
 *     prepare, token, join).
 */
import { Recorded, Run, SECRET_MARKERS, rawConfig, reveal, runProgram } from "../harness";

interface Size {
    label: string;
    controlPlanes: number;
    workers: number;
}

const SIZES: Size[] = [
    { label: "1 CP + 2 workers", controlPlanes: 1, workers: 2 },
    { label: "3 CPs + 20 workers", controlPlanes: 3, workers: 20 },
    { label: "3 CPs + 200 workers", controlPlanes: 3, workers: 200 },
];

function config(size: Size) {
    const hosts = [];
    for (let i = 1; i <= size.controlPlanes; i++) {
        hosts.push({ name: `cp-${i}`, address: `10.1.0.${i}`, roles: ["control-plane"] });
    }
    for (let i = 1; i <= size.workers; i++) {
        hosts.push({ name: `worker-${i}`, address: `10.2.${Math.floor(i / 250)}.${(i % 250) + 1}`, roles: ["worker"] });
    }
    return rawConfig({
        hosts,
        ssh: { privateKey: SECRET_MARKERS.sshKey },
        ...(size.controlPlanes > 1 ? { apiServer: { address: "10.1.0.100" } } : {}),
    });
}

/** Longest chain of remote commands, following explicit dependsOn between commands. */
export function criticalPath(commands: Recorded[]): string[] {
    const byName = new Map(commands.map((c) => [c.name, c]));
    const memo = new Map<string, string[]>();
    const longest = (name: string): string[] => {
        const hit = memo.get(name);
        if (hit) return hit;
        const deps = byName.get(name)!.dependsOn.filter((d) => byName.has(d));
        const best = deps.map(longest).reduce<string[]>((a, b) => (b.length > a.length ? b : a), []);
        const path = [...best, name];
        memo.set(name, path);
        return path;
    };
    return commands.map((c) => longest(c.name)).reduce<string[]>((a, b) => (b.length > a.length ? b : a), []);
}

interface Row {
    size: Size;
    evalMs: number;
    commands: number;
    perWorkerCommands: number;
    /** Remote commands up to and including the join itself (the registration step runs after). */
    perWorkerToJoin: number;
    perCpCommands: number;
    sessionsMax: { host: string; sessions: number };
    sessionsWorker: number;
    critical: string[];
}

async function measure(size: Size): Promise<Row> {
    const start = process.hrtime.bigint();
    const run: Run = await runProgram(config(size));
    const evalMs = Number(process.hrtime.bigint() - start) / 1e6;
    const commands = run.commands();
    const stepsOf = (host: string) => commands.filter((c) => c.name.startsWith(`${host}-`)).length;
    const sessions = new Map<string, number>();
    for (const c of commands) {
        const host = reveal<{ host: string }>(c.inputs.connection).host;
        sessions.set(host, (sessions.get(host) ?? 0) + 1);
    }
    const [maxHost, maxSessions] = [...sessions.entries()].reduce((a, b) => (b[1] > a[1] ? b : a));
    return {
        size,
        evalMs,
        commands: commands.length,
        perWorkerCommands: stepsOf("worker-1"),
        perWorkerToJoin: commands.filter((c) => c.name.startsWith("worker-1-") && !c.name.endsWith("-node")).length,
        perCpCommands: stepsOf("cp-1"),
        sessionsMax: { host: maxHost, sessions: maxSessions },
        sessionsWorker: sessions.get("10.2.0.2") ?? 0,
        critical: criticalPath(commands),
    };
}

async function main() {
    // Warm up module loading and the mock runtime so the first size is not penalised.
    await runProgram(config(SIZES[0]));
    const rows: Row[] = [];
    for (const size of SIZES) rows.push(await measure(size));

    const base = rows[0];
    const hostsOf = (r: Row) => r.size.controlPlanes + r.size.workers;
    console.log("| cluster | eval (ms) | eval ratio / host ratio | remote commands | per worker (to join) | on a worker host (SSH sessions) | busiest host (SSH sessions) | critical path |");
    console.log("| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |");
    for (const r of rows) {
        const evalRatio = r.evalMs / base.evalMs;
        const hostRatio = hostsOf(r) / hostsOf(base);
        console.log(`| ${r.size.label} | ${r.evalMs.toFixed(0)} | ${evalRatio.toFixed(1)} / ${hostRatio.toFixed(1)} | ${r.commands} | ${r.perWorkerCommands} (${r.perWorkerToJoin}) | ${r.sessionsWorker} | ${r.sessionsMax.host} (${r.sessionsMax.sessions}) | ${r.critical.length}: ${r.critical.join(" → ")} |`);
    }

    const failures: string[] = [];
    const largest = rows[rows.length - 1];
    if (rows.some((r) => r.size.controlPlanes === largest.size.controlPlanes && r.critical.length !== largest.critical.length)) {
        failures.push("critical path grows with the number of workers");
    }
    for (const r of rows.slice(1)) {
        // Linear with slack for timer noise on small runs: eval ratio <= 1.5 x host ratio.
        if (r.evalMs / base.evalMs > 1.5 * (hostsOf(r) / hostsOf(base))) {
            failures.push(`evaluation time grows faster than linearly at ${r.size.label}`);
        }
    }
    for (const r of rows) {
        if (r.perWorkerToJoin > 5) failures.push(`a worker takes ${r.perWorkerToJoin} remote commands to join at ${r.size.label}`);
    }
    if (failures.length > 0) {
        console.error(`bench targets missed:\n${failures.map((f) => `  - ${f}`).join("\n")}`);
        process.exit(1);
    }
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
