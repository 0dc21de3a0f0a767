// Package agent runs stages on other machines. The server side, Dispatcher, is an
// execute.Executor: Run queues the job, an agent (`paved agent`) takes it by HTTP long-poll,
// and Run returns the agent's result. The agent side, Agent, runs each job it takes with the
// local executor in its own data directory.
//
// The protocol is JSON over HTTP under /api/v1/agent/, each request carrying the agent's own
// token (Authorization: Bearer), checked against the stored hashes of valid tokens:
//
//	POST /api/v1/agent/claim               long-poll for a job whose labels the agent has
//	POST /api/v1/agent/jobs/{id}/heartbeat extends the job's lease; says when to cancel
//	POST /api/v1/agent/jobs/{id}/progress  step events and output, numbered from 1
//	POST /api/v1/agent/jobs/{id}/result    how the job ended
//	GET  /api/v1/agent/blobs/{digest}      an upstream artifact
//	PUT  /api/v1/agent/blobs/{digest}      an artifact the job stored
//
// Progress items carry a sequence number per job. The server applies them in order and
// answers with the last one it applied; an item it has applied already is ignored, and a
// gap (an item after a missing one) is refused with 409 and the last applied number, from
// which the agent sends again. So a retried request never duplicates a log line, and a lost
// one is never skipped silently.
//
// Leases: a job is the agent's while it heartbeats. A job whose agent missed its lease
// ends Run with an error wrapping execute.ErrLost, and the scheduler runs the stage again
// as a new attempt (reason agent_lost). The agent fences itself: when it could not
// heartbeat for the lease time it kills the job, so a lost agent's stage does not run on
// beside its replacement. The lease should be shorter than the servers' run lease, so that
// an agent of a dead server stops before another server runs the stage again.
package agent
