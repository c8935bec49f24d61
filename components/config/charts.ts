/** The `charts` section: where each Helm chart comes from. */
import { ChartSource } from "../model";
import { chartNames } from "../versions";
import * as fs from "fs";
import { Problems, isObject, isAbsent, child, show, describe, checkKeys } from "./problems";

const CHART_SOURCE_KEYS = ["repo", "path"] as const;

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
        if (!isAbsent(repo) && !isAbsent(file)) {
            problems.add(path, `give either repo (a mirror of the chart repository) or path (a local chart archive), not both`);
        } else if (!isAbsent(repo)) {
            if (typeof repo !== "string" || !/^(https?|oci):\/\/[^\s'"\\]+$/.test(repo.trim())) {
                problems.add(child(path, "repo"), `${show(repo)} is not a chart repository URL: give the http(s):// URL of a repository serving the same chart and version (or oci://)`);
            } else {
                result[name] = { repo: repo.trim() };
            }
        } else if (!isAbsent(file)) {
            if (typeof file !== "string" || file.trim() === "") {
                problems.add(child(path, "path"), `must be the path of a chart archive (.tgz) or chart directory, got ${describe(file)}`);
            } else if (!fs.existsSync(file)) {
                problems.add(child(path, "path"), `${show(file)} does not exist (relative paths are relative to the Pulumi project directory): download the chart there, e.g. \`helm pull\` on a machine with access`);
            } else {
                result[name] = { path: file };
            }
        } else {
            problems.add(path, `needs repo or path (${example})`);
        }
    }
    return result;
}

