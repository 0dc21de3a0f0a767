package agent

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/paved/paved/internal/execute"
)

// Claim is an agent's long-poll for a job.
type Claim struct {
	Agent  string            `json:"agent"`  // the agent's name, for the server's log and list
	Labels map[string]string `json:"labels"` // what the agent offers to runs_on
}

// Assignment is a job given to an agent.
type Assignment struct {
	ID      string      `json:"id"`
	LeaseMS int64       `json:"lease_ms"` // heartbeat at least this often, or lose the job
	Job     execute.Job `json:"job"`
}

// Heartbeat answers a heartbeat: Cancel says the server no longer wants the job (the run was
// cancelled or timed out); the agent kills it and reports.
type Heartbeat struct {
	Cancel bool `json:"cancel"`
}

// Progress kinds, one per Observer method.
const (
	KindStepStarted  = "step_started"
	KindOutput       = "output"
	KindStepFinished = "step_finished"
	KindCache        = "cache"
)

// Item is one Observer call on the agent, numbered.
type Item struct {
	Seq      int64                `json:"seq"`
	Kind     string               `json:"kind"`
	Step     int                  `json:"step"`
	Data     []byte               `json:"data,omitempty"`
	ExitCode int                  `json:"exit_code,omitempty"`
	TookMS   int64                `json:"took_ms,omitempty"`
	Cache    *execute.CacheReport `json:"cache,omitempty"`
}

// ProgressRequest carries items in order; ProgressReply says the last seq applied.
type ProgressRequest struct {
	Items []Item `json:"items"`
}

// ProgressReply is the server's acknowledgement.
type ProgressReply struct {
	Acked int64 `json:"acked"`
}

// Outcome is how a job ended on the agent. Error is set when the executor failed
// (infrastructure, cancel): it becomes Run's error on the server.
type Outcome struct {
	Result execute.Result `json:"result"`
	Error  string         `json:"error,omitempty"`
	// LastSeq is the seq of the last progress item: the server checks it has them all.
	LastSeq int64 `json:"last_seq"`
}

// NewToken makes an agent token: "pva_" and 32 random bytes in hex.
func NewToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return "pva_" + hex.EncodeToString(b)
}

// HashToken is what the store keeps of a token. Tokens are 256 random bits: a plain SHA-256
// cannot be reversed or guessed, and a slow hash would only slow every request.
func HashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

func ms(d time.Duration) int64 { return d.Milliseconds() }
