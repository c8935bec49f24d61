/** The `charts` section: where each Helm chart comes from. */
import { ChartSource } from "../model";
import { chartNames, chartPin } from "../versions";
import * as fs from "fs";
import { Problems, isObject, isAbsent, child, show, describe, checkKeys, deepCopy } from "./problems";

const CHART_SOURCE_KEYS = ["repo", "path", "values"] as const;

/** Dotted paths of every leaf in `v`. */
function leafPaths(v: unknown, prefix = ""): string[] {
    if (!isObject(v)) return [prefix];
    return Object.keys(v).flatMap((k) => leafPaths(v[k], prefix ? `${prefix}.${k}` : k));
}

export function parseCharts(raw: unknown, problems: Problems): Record<string, ChartSource> {
    const result: Record<string, ChartSource> = {};
    if (isAbsent(raw)) return result;
    const known = chartNames();
    const example = `e.g. {${known[0]}: {repo: "https://charts.example.com/${known[0]}"}} or {${known[0]}: {path: ./charts/${known[0]}.tgz}}`;
    if (!isObject(raw)) {
        problems.add("charts", `must be an object of chart sources by chart name, got ${describe(raw)} (${example})`);
        return result;
    }
    checkKeys(raw, known, "charts", problems);
    for (const name of known) {
        const v = raw[name];
        if (isAbsent(v)) continue;
        const path = child("charts", name);
        if (!isObject(v)) {
            problems.add(path, `must be {repo: URL} or {path: FILE}, got ${describe(v)} (${example})`);
            continue;
        }
        checkKeys(v, CHART_SOURCE_KEYS, path, problems);
        const repo = v["repo"];
        const file = v["path"];
        const values = v["values"];
        const source: ChartSource = {};
        if (!isAbsent(values)) {
            if (!isObject(values)) {
                problems.add(child(path, "values"), `must be an object of chart values, got ${describe(values)}`);
            } else {
                const owned = chartPin(name)?.ownedValues ?? [];
                const clash = leafPaths(values).filter((p) => owned.some((o) => p === o || p.startsWith(`${o}.`) || o.startsWith(`${p}.`)));
                if (clash.length > 0) {
                    problems.add(child(path, "values"), `sets ${clash.map((c) => JSON.stringify(c)).join(", ")}, which the program derives from the cluster's settings (${owned.join(", ")}): remove ${clash.length === 1 ? "it" : "them"}`);
                } else {
                    source.values = deepCopy(values) as Record<string, unknown>;
                }
            }
        }
        if (!isAbsent(repo) && !isAbsent(file)) {
            problems.add(path, `give either repo (a mirror of the chart repository) or path (a local chart archive), not both`);
        } else if (!isAbsent(repo)) {
            if (typeof repo !== "string" || !/^(https?|oci):\/\/[^\s'"\\]+$/.test(repo.trim())) {
                problems.add(child(path, "repo"), `${show(repo)} is not a chart repository URL: give the http(s):// URL of a repository serving the same chart and version (or oci://)`);
            } else {
                source.repo = repo.trim();
            }
        } else if (!isAbsent(file)) {
            if (typeof file !== "string" || file.trim() === "") {
                problems.add(child(path, "path"), `must be the path of a chart archive (.tgz) or chart directory, got ${describe(file)}`);
            } else if (!fs.existsSync(file)) {
                problems.add(child(path, "path"), `${show(file)} does not exist (relative paths are relative to the Pulumi project directory): download the chart there, e.g. \`helm pull\` on a machine with access`);
            } else {
                source.path = file;
            }
        } else if (isAbsent(values)) {
            problems.add(path, `needs repo, path or values (${example})`);
        }
        if (Object.keys(source).length > 0) result[name] = source;
    }
    return result;
}

