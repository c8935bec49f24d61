/**
 * A test tier that needs something this machine may lack (root, systemd-nspawn,
 * Go-built binaries). Where it is missing the tier is skipped with a warning,
 * except under CI=true, where it fails with the reason: a green CI must never
 * mean "did not run".
 */
export interface Availability {
    ok: boolean;
    why?: string;
}

export interface Tier {
    availability: Availability;
    /** `describe`, or `describe.skip` when unavailable outside CI. */
    describe: jest.Describe;
    /** Call first in beforeAll: throws the reason when the tier cannot run (only reached under CI). */
    require(): void;
}

export function tier(label: string, file: string, availability: Availability): Tier {
    const inCI = process.env.CI === "true";
    if (!availability.ok && !inCI) console.warn(`[${label}] skipping ${file}: ${availability.why}`);
    return {
        availability,
        describe: availability.ok || inCI ? describe : describe.skip,
        require() {
            if (!availability.ok) throw new Error(`${label} not available (CI=true): ${availability.why}`);
        },
    };
}
