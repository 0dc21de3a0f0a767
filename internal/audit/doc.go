// Package audit is paved's tamper-evident audit log: every security-relevant action (logins,
// token use and creation, approvals and rejections, promotions, the hotfix lane, secret
// access, policy changes, deployments, rollbacks) is appended as an entry whose hash covers
// the entry and the hash of the one before it.
//
// The chain is built inside the store's append transaction (the store serialises appends),
// so concurrent writers cannot fork it. Verify recomputes every hash: an entry changed in
// the database by even one byte fails at that entry, and a removed or reordered entry
// breaks the link to the next. Retention (Prune) removes only a prefix of the chain and
// keeps the last removed entry's seq and hash as the anchor the rest is checked from.
//
// What the chain cannot show on its own is the loss of its newest entries: keep the head
// hash that `paved audit verify` prints somewhere else to detect a truncated tail.
package audit
