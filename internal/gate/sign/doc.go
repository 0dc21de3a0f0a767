// Package sign is paved's supply-chain trust: the control plane's signing keys, signatures
// of artifacts, their provenance and SBOM attestations, and the check that an artifact may
// be deployed.
//
// The threat it answers is a compromised runner: a stage's sandbox can write any bytes it
// likes into its artifacts, but it never sees the data directory, so it can neither sign
// nor rewrite what the control plane recorded. The control plane hashes what a stage
// produced, signs that digest with its own key (Keys), records an in-toto Statement with a
// SLSA v1 provenance predicate (and the SBOM as a CycloneDX attestation), each in a DSSE
// envelope, in an on-disk index keyed by the digest (Index). Before a deployment, Verifier
// checks the bytes against the digest, the signature and the provenance against the
// trusted keys, and the provenance's source against the environment's Policy.
//
// Formats are the public ones so that tools outside paved can check paved's work: a blob
// signature is what `cosign verify-blob --key` accepts (base64 of the ASN.1 ECDSA P-256
// signature over the SHA-256 of the bytes); envelopes follow the DSSE spec with in-toto v1
// statements inside. docs/supply-chain.md shows how to verify by hand.
//
// Keys are generated on first start and kept in one file whose private halves are sealed
// with AES-256-GCM under a key-encryption key (KEK) that comes from the environment or from
// a 0600 file beside them. Rotation adds a new active key and keeps the old public keys, so
// what they signed still verifies.
package sign
