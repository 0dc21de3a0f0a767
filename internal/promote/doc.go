// Package promote moves freight through an ordered list of environments. Freight is the
// immutable set a succeeded run produced (the digests it deployed, its repo, sha and
// pipeline config hash), named by a digest of that content with a short alias; promotion
// deploys exactly those digests to the next environment through the deploy Controller and
// never rebuilds. Before a promotion deploys, its policies must hold (no gate blocks the
// freight at the environment's strictness, the freight was verified in the previous
// environment and soaked there long enough) and its changeset's risk must be approved: low
// (docs only) needs nobody, medium one approver, high (migrations, auth, payment,
// infrastructure) two; the change's author cannot approve and one rejection fails it.
// Environments with auto_promote get promoted by the Service's loop once soak elapsed.
package promote
