/**
 * Whether this run is CI, where a suite that cannot run here (no root for network namespaces, no
 * Chromium) must fail instead of skipping. `.ci/run` exports CI=true; `1` is accepted too, as
 * most CI services set one or the other.
 */
export const ON_CI = process.env.CI === 'true' || process.env.CI === '1';
