/**
 * The `users` section: people and tools that get a client certificate from
 * the cluster CA and an RBAC binding to a ClusterRole.
 *
 * A client certificate cannot be revoked in Kubernetes (the API server has no
 * CRL), so what gives and removes access is the binding: the checks below
 * refuse every identity whose access would not go away with it (`system:`
 * groups, `system:masters` above all, which bypasses RBAC; kubeadm's
 * `kubeadm:cluster-admins`, bound to cluster-admin by kubeadm itself).
 */
import { UserSpec } from "../model";
import { Problems, isObject, isAbsent, child, item, show, describe, checkKeys, quoteList } from "./problems";
import { isDnsLabel } from "./addresses";

const USER_KEYS = ["name", "groups", "role", "namespace"] as const;

/** Kubernetes' default user-facing ClusterRoles (kubernetes.io "Using RBAC Authorization", user-facing roles). */
export const DEFAULT_USER_ROLES = ["view", "edit", "admin", "cluster-admin"] as const;

/**
 * A user name the program accepts: it is the certificate's CN and part of
 * the Pulumi resource and binding names, so letters, digits and `. _ @ + -`
 * (e.g. `jane`, `jane@example.com`, `ci-bot`), at most 128 characters.
 */
const USER_NAME = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$/;
/** A group (the certificate's O): the same, plus ':' (`team:platform`). */
const GROUP_NAME = /^[A-Za-z0-9][A-Za-z0-9._@+:-]{0,127}$/;
/** A ClusterRole name as RBAC objects name them (`view`, `system:aggregate-to-view`, `my-org:reader`). */
const ROLE_NAME = /^[a-z0-9]([a-z0-9:._-]{0,251}[a-z0-9])?$/;

/** kubeadm binds this group to cluster-admin at init (UPSTREAM.md: admin.conf's O since 1.29). */
const KUBEADM_ADMIN_GROUP = "kubeadm:cluster-admins";

const EXAMPLE = `e.g. {name: jane, role: view} or {name: ci-bot, role: edit, namespace: apps}`;

function parseUser(raw: unknown, path: string, problems: Problems): UserSpec | undefined {
    if (!isObject(raw)) {
        problems.add(path, `must be an object with name and role, got ${describe(raw)} (${EXAMPLE})`);
        return undefined;
    }
    checkKeys(raw, USER_KEYS, path, problems);
    const before = problems.count;

    const name = raw["name"];
    if (typeof name !== "string") {
        problems.add(child(path, "name"), `is required: the Kubernetes user name (the certificate's CN), ${EXAMPLE}`);
    } else if (/^system:/i.test(name)) {
        problems.add(child(path, "name"), `${show(name)} starts with "system:", which Kubernetes reserves for its own components: choose another name`);
    } else if (!USER_NAME.test(name)) {
        problems.add(child(path, "name"), `${show(name)} is not a user name the program accepts: use letters, digits and '.', '_', '@', '+', '-', starting with a letter or digit, at most 128 characters (e.g. "jane" or "jane@example.com")`);
    }

    const groups: string[] = [];
    const rawGroups = raw["groups"];
    if (!isAbsent(rawGroups)) {
        if (!Array.isArray(rawGroups)) {
            problems.add(child(path, "groups"), `must be a list with one group name, got ${describe(rawGroups)}`);
        } else {
            rawGroups.forEach((g, i) => {
                const at = item(child(path, "groups"), i);
                if (typeof g !== "string" || !GROUP_NAME.test(g)) {
                    problems.add(at, `${show(g)} is not a group name: use letters, digits and '.', '_', '@', '+', ':', '-' (e.g. "team-a")`);
                } else if (g === "system:masters") {
                    problems.add(at, `"system:masters" is refused: that group bypasses RBAC entirely, so removing the user's binding would not remove their access, and a client certificate cannot be revoked. Use role: cluster-admin instead`);
                } else if (g.startsWith("system:")) {
                    problems.add(at, `${show(g)} is refused: "system:" groups are Kubernetes' own (nodes, service accounts, bootstrappers) and carry powers that no binding of this program controls: use a group of your own`);
                } else if (g === KUBEADM_ADMIN_GROUP) {
                    problems.add(at, `"${KUBEADM_ADMIN_GROUP}" is refused: kubeadm binds it to cluster-admin, so removing the user's binding would not remove their access (a certificate cannot be revoked). Use role: cluster-admin instead`);
                } else if (!groups.includes(g)) {
                    groups.push(g);
                }
            });
            // @pulumi/tls's certificate subject holds one organization (O), and Kubernetes reads groups from O.
            if (groups.length > 1) {
                problems.add(child(path, "groups"), `lists ${groups.length} groups, but the certificate can carry only one (the tls provider's subject has a single organization, O): keep one group, or bind the user through its role`);
            }
        }
    }

    const role = raw["role"];
    if (typeof role !== "string") {
        problems.add(child(path, "role"), `is required: the ClusterRole to bind the user to, e.g. ${quoteList(DEFAULT_USER_ROLES)}`);
    } else if (!ROLE_NAME.test(role)) {
        problems.add(child(path, "role"), `${show(role)} is not a ClusterRole name: use lowercase letters, digits and ':', '.', '_', '-' (e.g. ${quoteList(DEFAULT_USER_ROLES)})`);
    }

    const namespace = raw["namespace"];
    if (!isAbsent(namespace) && (typeof namespace !== "string" || !isDnsLabel(namespace))) {
        problems.add(child(path, "namespace"), `${show(namespace)} is not a namespace name: use lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters (leave it out for a cluster-wide binding)`);
    }

    if (problems.count !== before) return undefined;
    return { name: name as string, groups, role: role as string, ...(typeof namespace === "string" ? { namespace } : {}) };
}

export function parseUsers(raw: unknown, problems: Problems): UserSpec[] {
    const result: UserSpec[] = [];
    if (isAbsent(raw)) return result;
    if (!Array.isArray(raw)) {
        problems.add("users", `must be a list of users, got ${describe(raw)} (${EXAMPLE})`);
        return result;
    }
    const seen = new Map<string, number>();
    raw.forEach((u, i) => {
        const path = item("users", i);
        const user = parseUser(u, path, problems);
        if (!user) return;
        const first = seen.get(user.name.toLowerCase());
        if (first !== undefined) {
            problems.add(child(path, "name"), `${JSON.stringify(user.name)} is already users[${first}] (names are compared ignoring case): give each user once`);
            return;
        }
        seen.set(user.name.toLowerCase(), i);
        result.push(user);
    });
    return result;
}
