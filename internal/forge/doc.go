// Package forge reports runs back to where their code lives: a commit status per run and,
// optionally, per stage, linked to the run page; and on a pull (merge) request one comment,
// created once and edited in place afterwards, with the diff of the Kubernetes manifests the
// change would deploy, the gate summary and the change's risk.
//
// The forges (GitHub, GitLab, Bitbucket Cloud) sit behind one small interface, Forge, each
// a client of the vendor's REST API over net/http. A Reporter takes the scheduler's run
// events, turns them into status updates and comments, and sends them from a queue kept on
// disk, one ordered queue per run, with retries and exponential backoff (honouring
// Retry-After), so that a forge that is down or rate-limiting never holds up a run and an
// update survives a restart of the server. An update that keeps failing is dropped with a
// log line and a metric: a status is advice, the run's own record is the event log.
package forge
