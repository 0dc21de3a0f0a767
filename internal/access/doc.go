// Package access says who is calling paved and what they may do: local users with bcrypt
// password hashes, teams, a role per (team, user) — viewer < developer < admin — approvers
// per (team, environment), and API tokens.
//
// # Tokens
//
// A token is 32 random bytes shown once, at creation; the store keeps only its SHA-256, which
// is enough for a secret of that entropy (no salt or slow hash is needed: nobody can guess a
// preimage, and a stolen table gives no token). A token is scoped: to one team and a role in
// it (never more than its user's role there, checked at creation and again at each use, so
// that removing a member disarms their tokens), or to every team for a server admin. Tokens
// expire, can be revoked, and record when they were last used (at most once a minute, so a
// busy client does not turn every read into a write).
//
// A session is a token of the same kind made by Login: it carries the user's own roles in
// every team they belong to and expires after Config.SessionTTL. OIDC (oidc.go) starts the
// same sessions for users of an identity provider, whose roles in the teams its mapping
// names follow their groups at each login; such users belong to the issuer, so that a
// provider can never sign in as a local user.
//
// # Long-lived requests
//
// A request is authenticated when it arrives; Hold keeps a stream's credentials honest
// after that, rechecking every open stream's token against the store on one ticker, so a
// revocation, a logout, a password change or a user's removal (also by another server
// sharing the store) ends the streams within Config.RecheckEvery.
//
// # Who decides what
//
// This package knows identities and roles. Which role a route needs and how the team of a
// resource is found is internal/api's route table; the API turns a resource of another team
// into 404, so that a token cannot probe what exists elsewhere.
package access
