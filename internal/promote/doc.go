// Package promote moves freight through an ordered list of environments. Freight is the
// immutable set a succeeded run produced (the digests it deployed, its repo, sha, pipeline
// config hash and test coverage), named by a digest of that content with a short alias;
// promotion deploys exactly those digests to the next environment through the deploy
// Controller, or commits them to a config repository for a gitops environment
// (internal/deploy/gitops), and never rebuilds. Before a promotion deploys, its policies
// must hold (no gate blocks the freight at the environment's strictness, its coverage
// reaches the environment's minimum, it was verified in the previous environment and soaked
// there long enough) and its changeset's risk must be approved: low (docs only) needs
// nobody, medium one approver, high (migrations, auth, payment, infrastructure) two; the
// change's author cannot approve, one rejection fails it, and an approval timeout decides
// for the approvers, never approving a security-critical change. A hotfix, asked for by a
// permitted user with a reason, enforces only secret detection and CRITICAL vulnerabilities,
// needs one approval at most, lists what it skipped and starts a follow-up run of the
// skipped gates whose result it links. Pull requests with the preview label deploy to
// pr-<number> (PreviewKind) and are torn down when they close. Environments with
// auto_promote get promoted by the Service's loop once soak elapsed.
package promote
