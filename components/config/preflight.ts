/** The `preflight` section. */
import { PREFLIGHT_CHECKS, PreflightCheck, PreflightSpec } from "../model";
import { Problems, isObject, isAbsent, item, show, describe, quoteList, closest, checkKeys } from "./problems";

const PREFLIGHT_KEYS = ["ignore"] as const;

export function parsePreflight(raw: unknown, problems: Problems): PreflightSpec {
    const result: PreflightSpec = { ignore: [] };
    if (isAbsent(raw)) return result;
    if (!isObject(raw)) {
        problems.add("preflight", `must be an object like {ignore: [cgroup]}, got ${describe(raw)}`);
        return result;
    }
    checkKeys(raw, PREFLIGHT_KEYS, "preflight", problems);
    const ignore = raw["ignore"];
    if (isAbsent(ignore)) return result;
    if (!Array.isArray(ignore)) {
        problems.add("preflight.ignore", `must be a list of check names (${quoteList(PREFLIGHT_CHECKS)}), got ${describe(ignore)}`);
        return result;
    }
    ignore.forEach((v, i) => {
        if (typeof v === "string" && (PREFLIGHT_CHECKS as readonly string[]).includes(v)) {
            if (!result.ignore.includes(v as PreflightCheck)) result.ignore.push(v as PreflightCheck);
        } else {
            const suggestion = typeof v === "string" ? closest(v, PREFLIGHT_CHECKS) : undefined;
            problems.add(item("preflight.ignore", i), `${show(v)} is not a preflight check: use ${suggestion ? `${JSON.stringify(suggestion)} or one of ` : ""}${quoteList(PREFLIGHT_CHECKS)}`);
        }
    });
    return result;
}

