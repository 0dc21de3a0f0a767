package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/paved/paved/internal/store"
)

// Actions recorded today.
const (
	ActionLogin        = "login"
	ActionLoginFailed  = "login.failed"
	ActionLogout       = "logout"
	ActionTokenUse     = "token.use"
	ActionTokenCreate  = "token.create"
	ActionTokenRevoke  = "token.revoke"
	ActionAccessChange = "access.change" // users, teams, members' roles, approver grants
	ActionApprove      = "approval.grant"
	ActionReject       = "approval.reject"
	ActionPromote      = "promotion.create"
	ActionHotfix       = "hotfix"
	ActionSecretCreate = "secret.create"
	ActionSecretUpdate = "secret.update"
	ActionSecretRead   = "secret.read"
	ActionSecretDelete = "secret.delete"
	ActionSecretRotate = "secret.rotate_key"
	ActionPolicyChange = "policy.change"
	ActionDeploy       = "deployment.start"
	ActionDeployFinish = "deployment.finish"
	ActionRollback     = "rollback"
	ActionAuditPrune   = "audit.prune"
)

// DefaultRetention is how long entries are kept unless configured: 12 months.
const DefaultRetention = 365 * 24 * time.Hour

// ErrTampered: the chain does not verify. The error names the entry.
var ErrTampered = errors.New("audit: the chain does not verify")

// Entry is what a caller records; the log adds seq, time and the hashes.
type Entry struct {
	Actor  string // who acted: a user, "system", or a token's owner
	Action string // one of the Action constants
	Team   string // the team the target belongs to, if any
	Target string // what was acted on: a secret's name, a promotion's id, ...
	// Details is anything that marshals to JSON; it is stored canonically (object keys
	// sorted, no spaces).
	Details any
}

// Store is what the log needs of a store.
type Store interface {
	AuditAppend(ctx context.Context, seal func(store.AuditHead) (store.AuditEntry, error)) (store.AuditEntry, error)
	AuditAnchor(ctx context.Context) (store.AuditHead, error)
	AuditList(ctx context.Context, p store.AuditListParams) ([]store.AuditEntry, error)
	AuditPrune(ctx context.Context, p store.AuditPruneParams) (int64, error)
}

// Config configures a Log.
type Config struct {
	Store Store
	// Retention: entries older than this are pruned by Start's loop and Prune. Default
	// DefaultRetention; negative keeps everything.
	Retention time.Duration
	// PruneEvery is how often Start prunes. Default 6 hours.
	PruneEvery time.Duration
	Now        func() time.Time // default time.Now
	Logger     *slog.Logger     // default slog.Default()
}

// Log appends to and checks the audit log. Safe for concurrent use.
type Log struct {
	cfg  Config
	stop chan struct{}
	done sync.WaitGroup
	once sync.Once
}

// New checks the config and makes a log.
func New(cfg Config) (*Log, error) {
	if cfg.Store == nil {
		return nil, errors.New("audit: Store is required")
	}
	if cfg.Retention == 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.PruneEvery <= 0 {
		cfg.PruneEvery = 6 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Log{cfg: cfg, stop: make(chan struct{})}, nil
}

// Record appends an entry. A failure is returned, not hidden: an action that must be
// audited should not happen unaudited.
func (l *Log) Record(ctx context.Context, e Entry) error {
	if e.Actor == "" || e.Action == "" {
		return errors.New("audit: record: Actor and Action are required")
	}
	details, err := canonical(e.Details)
	if err != nil {
		return fmt.Errorf("audit: record %s: details: %w", e.Action, err)
	}
	now := l.cfg.Now().UTC()
	_, err = l.cfg.Store.AuditAppend(context.WithoutCancel(ctx), func(h store.AuditHead) (store.AuditEntry, error) {
		se := store.AuditEntry{Seq: h.Seq + 1, Time: now, Actor: e.Actor, Action: e.Action, Team: e.Team, Target: e.Target,
			Details: details, PrevHash: h.Hash}
		se.Hash = Hash(se)
		return se, nil
	})
	if err != nil {
		return fmt.Errorf("audit: record %s: %w", e.Action, err)
	}
	return nil
}

// canonical is JSON with sorted keys and no insignificant space: the same details always
// hash the same. Numbers keep their digits (json.Number), not a float's rounding.
func canonical(v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var generic any
	if err := dec.Decode(&generic); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(generic); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n")), nil
}

// Hash is the entry's hash: SHA-256 over a length-prefixed encoding of every field but
// Hash itself (seq, time in Unix nanoseconds, actor, action, team, target, details and
// prev_hash), so no two different entries encode alike whatever bytes their fields hold.
func Hash(e store.AuditEntry) string {
	h := sha256.New()
	field := func(b []byte) {
		h.Write(strconv.AppendInt(nil, int64(len(b)), 10))
		h.Write([]byte{':'})
		h.Write(b)
	}
	h.Write([]byte("paved-audit-v1\n"))
	field(strconv.AppendInt(nil, e.Seq, 10))
	field(strconv.AppendInt(nil, e.Time.UnixNano(), 10))
	field([]byte(e.Actor))
	field([]byte(e.Action))
	field([]byte(e.Team))
	field([]byte(e.Target))
	field(e.Details)
	field([]byte(e.PrevHash))
	return hex.EncodeToString(h.Sum(nil))
}

// Report is what Verify found.
type Report struct {
	Entries int64           // entries checked
	Anchor  store.AuditHead // where the chain starts (the last pruned entry), zero if never pruned
	Head    store.AuditHead // the last entry checked
}

// Verify checks the whole chain from the anchor: every hash, every link and every seq. An
// error wraps ErrTampered and names the first entry that does not verify.
func (l *Log) Verify(ctx context.Context) (Report, error) {
	anchor, err := l.cfg.Store.AuditAnchor(ctx)
	if err != nil {
		return Report{}, err
	}
	r := Report{Anchor: anchor, Head: anchor}
	for {
		page, err := l.cfg.Store.AuditList(ctx, store.AuditListParams{AfterSeq: r.Head.Seq, Limit: 1000})
		if err != nil {
			return r, err
		}
		for _, e := range page {
			if err := check(e, r.Head); err != nil {
				return r, err
			}
			r.Head = store.AuditHead{Seq: e.Seq, Hash: e.Hash}
			r.Entries++
		}
		if len(page) < 1000 {
			return r, nil
		}
	}
}

func check(e store.AuditEntry, prev store.AuditHead) error {
	switch {
	case e.Seq != prev.Seq+1:
		return fmt.Errorf("%w: entry %d follows entry %d: entries %d to %d are missing", ErrTampered, e.Seq, prev.Seq, prev.Seq+1, e.Seq-1)
	case e.PrevHash != prev.Hash:
		return fmt.Errorf("%w: entry %d (%s by %s at %s): its prev_hash is not the hash of entry %d: one of them was changed",
			ErrTampered, e.Seq, e.Action, e.Actor, e.Time.Format(time.RFC3339), prev.Seq)
	case Hash(e) != e.Hash:
		return fmt.Errorf("%w: entry %d (%s by %s at %s) was changed after it was recorded: its hash does not match its content",
			ErrTampered, e.Seq, e.Action, e.Actor, e.Time.Format(time.RFC3339))
	}
	return nil
}

// List lists entries in seq order.
func (l *Log) List(ctx context.Context, p store.AuditListParams) ([]store.AuditEntry, error) {
	return l.cfg.Store.AuditList(ctx, p)
}

// Prune removes the entries older than the retention and records that it did.
func (l *Log) Prune(ctx context.Context) (int64, error) {
	if l.cfg.Retention < 0 {
		return 0, nil
	}
	before := l.cfg.Now().Add(-l.cfg.Retention)
	n, err := l.cfg.Store.AuditPrune(ctx, store.AuditPruneParams{Before: before})
	if err != nil {
		return 0, fmt.Errorf("audit: prune: %w", err)
	}
	if n > 0 {
		err = l.Record(ctx, Entry{Actor: "system", Action: ActionAuditPrune,
			Details: map[string]any{"removed": n, "before": before.UTC().Format(time.RFC3339)}})
	}
	return n, err
}

// Start prunes now and then every PruneEvery until Stop.
func (l *Log) Start(ctx context.Context) {
	l.done.Add(1)
	go func() {
		defer l.done.Done()
		t := time.NewTicker(l.cfg.PruneEvery)
		defer t.Stop()
		for {
			if n, err := l.Prune(ctx); err != nil {
				l.cfg.Logger.Error("audit retention", "err", err)
			} else if n > 0 {
				l.cfg.Logger.Info("audit retention pruned entries", "removed", n, "retention", l.cfg.Retention)
			}
			select {
			case <-ctx.Done():
				return
			case <-l.stop:
				return
			case <-t.C:
			}
		}
	}()
}

// Stop ends Start's loop and waits for it.
func (l *Log) Stop() {
	l.once.Do(func() { close(l.stop) })
	l.done.Wait()
}
