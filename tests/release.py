"""The previous release, which must run on a database this release migrated (the
expand/contract rule, docs/contributor/migrations.md): its commit, each app's latest
migration in it, and the columns kept in the database for it after the models let them go.
Moved to the release before at each release ("At each release" there)."""

# The release of 2 Dec 2026: main's last commit of that day.
PREVIOUS_RELEASE = "9b86a17049a9162ad2e898f0f48f24f4760bedb0"
# Each of the service's apps' latest migration in that release.
RELEASE_LEAVES = {
    "accounts": "0009_tenant_challenge",
    "calibration": "0003_job_threshold_rule_and_shadow",
    "capture": "0003_session_challenge",
    "guard": "0002_refusal",
    "liveness": "0005_livenesscheck_shadow",
}
# "table.column" taken out of the models but left in the database (a state-only RemoveField,
# with its database default) because the previous release still uses it; none now.
KEPT_IN_THE_DATABASE: frozenset[str] = frozenset()
