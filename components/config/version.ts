/** `kubernetesVersion`. */
import { DEFAULT_KUBERNETES_VERSION, KUBERNETES_MINORS } from "../versions";
import { Problems, isAbsent, show, describe } from "./problems";

export function parseKubernetesVersion(raw: unknown, problems: Problems): string {
    if (isAbsent(raw)) return DEFAULT_KUBERNETES_VERSION;
    const minors = Object.keys(KUBERNETES_MINORS) as (keyof typeof KUBERNETES_MINORS)[];
    const supported = `supported minors: ${minors.join(", ")}`;
    const latest = (minor: string): string | undefined =>
        (KUBERNETES_MINORS as Record<string, { latestPatch: string } | undefined>)[minor]?.latestPatch;
    const isNumber = typeof raw === "number";
    if (typeof raw !== "string" && !isNumber) {
        problems.add("kubernetesVersion", `must be a version string such as "${DEFAULT_KUBERNETES_VERSION}", got ${describe(raw)}`);
        return DEFAULT_KUBERNETES_VERSION;
    }
    const quoteHint = isNumber ? ` (quote it in YAML, or YAML reads it as a number)` : "";
    const text = String(raw).trim().replace(/^v/, "");
    const full = /^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$/.exec(text);
    const bare = /^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$/.exec(text);
    if (full) {
        const minor = `${full[1]}.${full[2]}`;
        if (latest(minor) === undefined) {
            problems.add(
                "kubernetesVersion",
                `Kubernetes ${minor} is not supported: use a version of a supported minor (${supported}), e.g. "${DEFAULT_KUBERNETES_VERSION}"`,
            );
        }
        return text;
    }
    if (bare) {
        const minor = `${bare[1]}.${bare[2]}`;
        const patch = latest(minor);
        problems.add(
            "kubernetesVersion",
            patch
                ? `${show(String(raw))} has no patch number: give a full version such as "${patch}" (the latest ${minor} patch)${quoteHint}`
                : `Kubernetes ${minor} is not supported and the version has no patch number: use a full version of a supported minor (${supported}), e.g. "${DEFAULT_KUBERNETES_VERSION}"${quoteHint}`,
        );
        return DEFAULT_KUBERNETES_VERSION;
    }
    const pre = /^([0-9]+\.[0-9]+\.[0-9]+)[-+]/.exec(text);
    problems.add(
        "kubernetesVersion",
        pre
            ? `${show(String(raw))} is a pre-release or build version: use a released version such as "${pre[1]}" (${supported})`
            : `${show(String(raw))} is not a Kubernetes version: write MAJOR.MINOR.PATCH, e.g. "${DEFAULT_KUBERNETES_VERSION}" (${supported})`,
    );
    return DEFAULT_KUBERNETES_VERSION;
}

