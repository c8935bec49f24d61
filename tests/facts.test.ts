/** Cross-host checks on preflight facts. */
import * as pulumi from "@pulumi/pulumi";
import { checkAgainstEarlier, fleetProblems, parseFacts } from "../components/facts";
import { healthyFacts } from "./harness";

describe("fleetProblems", () => {
    test("healthy, distinct hosts: no problem", () => {
        expect(fleetProblems(["a", "b", "c"].map((n) => healthyFacts(n)))).toEqual([]);
    });

    test("a shared product_uuid and a shared MAC are both reported, naming the hosts", () => {
        const a = healthyFacts("a");
        const b = { ...healthyFacts("b"), productUuid: a.productUuid };
        const c = { ...healthyFacts("c"), macs: [...healthyFacts("c").macs, a.macs[0]] };
        const problems = fleetProblems([a, b, c]);
        expect(problems).toHaveLength(2);
        expect(problems[0].nodes).toEqual(["a", "b"]);
        expect(problems[0].message).toContain(`hosts a, b share product_uuid ${a.productUuid}`);
        expect(problems[1].nodes).toEqual(["a", "c"]);
        expect(problems[1].message).toContain(`hosts a, c share MAC address ${a.macs[0]}`);
        expect(problems.every((p) => p.message.includes("Fix:"))).toBe(true);
    });

    test("hosts without a product_uuid (containers) are not reported as duplicates", () => {
        expect(fleetProblems([{ ...healthyFacts("a"), productUuid: "" }, { ...healthyFacts("b"), productUuid: "" }])).toEqual([]);
    });
});

describe("parseFacts", () => {
    test("accepts the preflight JSON line", () => {
        expect(parseFacts("a", JSON.stringify(healthyFacts("a")) + "\n").os.family).toBe("debian");
    });
    test("rejects output that is not facts, quoting it", () => {
        expect(() => parseFacts("a", "hello")).toThrow(/preflight on host a printed something that is not JSON facts: "hello"/);
        expect(() => parseFacts("a", JSON.stringify({ os: { family: "arch" }, macs: [] }))).toThrow(/supported os.family/);
    });
});

describe("checkAgainstEarlier", () => {
    beforeAll(() => pulumi.runtime.setMocks({
        newResource: (a) => ({ id: a.name, state: a.inputs }),
        call: (a) => a.inputs,
    }));

    /** The value of an output; its other internal promises (known, secret) are awaited too so a failure is not unhandled. */
    const resolve = <T>(o: pulumi.Output<T>) => {
        const internal = o as unknown as { promise(): Promise<T>; isKnown: Promise<boolean>; isSecret: Promise<boolean> };
        internal.isKnown.catch(() => undefined);
        internal.isSecret.catch(() => undefined);
        return internal.promise();
    };
    const out = <T>(v: T) => pulumi.output(v);

    test("passes a host whose identity no earlier host shares", async () => {
        const facts = await resolve(checkAgainstEarlier(out(healthyFacts("b")), [out(healthyFacts("a"))]));
        expect(facts.node).toBe("b");
    });

    test("fails the later host of a duplicate pair with every problem it has", async () => {
        const a = healthyFacts("a");
        const b = { ...healthyFacts("b"), productUuid: a.productUuid, macs: a.macs };
        await expect(resolve(checkAgainstEarlier(out(b), [out(a)])))
            .rejects.toThrow(/preflight failed on host b:\n  - hosts a, b share product_uuid .*\n  - hosts a, b share MAC address/);
    });

    test("ignores duplicates between other hosts (they are reported at their own later host)", async () => {
        const a = healthyFacts("a");
        const b = { ...healthyFacts("b"), productUuid: a.productUuid };
        expect((await resolve(checkAgainstEarlier(out(healthyFacts("c")), [out(a), out(b)]))).node).toBe("c");
    });
});
