package store

import (
	"encoding/json"
	"time"
)

// AuditEntry is one entry of the hash-chained audit log (internal/audit computes Hash and
// checks the chain; the store only keeps entries in Seq order and appends them atomically).
type AuditEntry struct {
	Seq    int64     `json:"seq"`
	Time   time.Time `json:"time"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	Team   string    `json:"team,omitempty"`
	Target string    `json:"target,omitempty"`
	// Details is canonical JSON, kept byte for byte: the hash covers these bytes.
	Details  json.RawMessage `json:"details,omitempty"`
	PrevHash string          `json:"prev_hash"`
	Hash     string          `json:"hash"`
}

// AuditHead is where the chain stands: the last entry's Seq and Hash, or the anchor left
// by pruning (or 0 and "" for an empty log that was never pruned).
type AuditHead struct {
	Seq  int64
	Hash string
}

// AuditListParams lists audit entries in Seq order. Zero fields do not filter; Limit 0
// means 100.
type AuditListParams struct {
	Actor        string
	Action       string
	Team         string
	Since, Until time.Time // the entry's time in [Since, Until)
	AfterSeq     int64
	Limit        int
}

// AuditPruneParams removes the entries older than Before (a prefix of the chain: never one
// after an entry that is kept) and keeps the last removed entry's seq and hash as the
// anchor the rest of the chain is verified from.
type AuditPruneParams struct {
	Before time.Time
}
