// Package identity makes paved an OpenID Connect issuer for workload identity: a stage that
// asks for it (id_token: {audience: ...}) gets a short-lived JWT signed by paved, whose
// claims say which repository, ref, commit, pipeline, stage, run and environment it was
// issued to, shaped like the tokens GitHub Actions issues, so that a cloud's or Vault's trust
// policy written for those reads paved's the same way. A deploy then federates to the cloud
// with no stored key.
//
// The verifier fetches /.well-known/openid-configuration and the JWKS it names; both are
// public. The signing keys are RSA (RS256, which every federation accepts) and live in a
// file of the data directory, readable by paved alone. A key signs for RotateEvery; the next
// one then signs, and the old key stays in the JWKS until every token it signed has expired,
// so a rotation never makes a valid token fail verification.
package identity
