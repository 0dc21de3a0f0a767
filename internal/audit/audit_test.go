package audit_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paved/paved/internal/audit"
	"github.com/paved/paved/internal/store"
	"github.com/paved/paved/internal/store/sqlite"
)

// clock is a settable time for retention tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newLog(t *testing.T, c *clock, retention time.Duration) (*audit.Log, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "paved.db")
	st, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := audit.Config{Store: st, Retention: retention}
	if c != nil {
		cfg.Now = c.now
	}
	l, err := audit.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l, path
}

func record(t *testing.T, l *audit.Log, n int) {
	t.Helper()
	for i := range n {
		err := l.Record(t.Context(), audit.Entry{Actor: fmt.Sprint("user", i%3), Action: audit.ActionSecretRead, Team: "payments",
			Target: "DB_PASSWORD", Details: map[string]any{"run": fmt.Sprint("r", i), "b": 2, "a": []int{1}}})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestVerifyDetectsOneChangedByte(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, sql, want string
	}{
		{"actor", `UPDATE audit SET actor = 'user9' WHERE seq = 3`, "entry 3 (secret.read by user9"},
		{"details", `UPDATE audit SET details = CAST(replace(CAST(details AS TEXT), 'r4', 'r5') AS BLOB) WHERE seq = 5`, "entry 5 "},
		{"time", `UPDATE audit SET time = substr(time, 1, 28) || CASE substr(time, 29, 1) WHEN '1' THEN '2' ELSE '1' END || 'Z' WHERE seq = 2`, "entry 2 "},
		{"hash", `UPDATE audit SET hash = CASE substr(hash, 1, 1) WHEN 'f' THEN 'e' ELSE 'f' END || substr(hash, 2) WHERE seq = 4`, "entry 4 "},
		{"deleted", `DELETE FROM audit WHERE seq = 6`, "entries 6 to 6 are missing"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			l, path := newLog(t, nil, 0)
			record(t, l, 8)
			if r, err := l.Verify(t.Context()); err != nil || r.Entries != 8 || r.Head.Seq != 8 {
				t.Fatalf("Verify before = %+v, %v", r, err)
			}
			db, err := sql.Open("sqlite", path)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if res, err := db.Exec(c.sql); err != nil {
				t.Fatal(err)
			} else if n, _ := res.RowsAffected(); n != 1 {
				t.Fatalf("%s changed %d rows", c.sql, n)
			}
			_, err = l.Verify(t.Context())
			if !errors.Is(err, audit.ErrTampered) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Verify after %s = %v; want ErrTampered naming %q", c.sql, err, c.want)
			}
		})
	}
}

func TestConcurrentRecordsKeepOneChain(t *testing.T) {
	t.Parallel()
	l, _ := newLog(t, nil, 0)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 10 {
				if err := l.Record(context.Background(), audit.Entry{Actor: fmt.Sprint("u", i), Action: audit.ActionTokenUse, Target: fmt.Sprint(j)}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	r, err := l.Verify(t.Context())
	if err != nil || r.Entries != 80 {
		t.Fatalf("Verify = %+v, %v; want 80 entries", r, err)
	}
}

func TestRetentionKeepsChainVerifiable(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l, _ := newLog(t, c, 30*24*time.Hour)
	record(t, l, 3)
	c.add(20 * 24 * time.Hour)
	record(t, l, 2)
	c.add(20 * 24 * time.Hour) // the first 3 are 40 days old now, the next 2 are 20
	n, err := l.Prune(t.Context())
	if err != nil || n != 3 {
		t.Fatalf("Prune = %d, %v; want 3", n, err)
	}
	r, err := l.Verify(t.Context())
	if err != nil || r.Anchor.Seq != 3 || r.Entries != 3 { // 2 kept + the prune's own entry
		t.Fatalf("Verify after prune = %+v, %v", r, err)
	}
	list, _ := l.List(t.Context(), store.AuditListParams{Action: audit.ActionAuditPrune})
	if len(list) != 1 || list[0].Actor != "system" || !strings.Contains(string(list[0].Details), `"removed":3`) {
		t.Fatalf("prune entry = %+v", list)
	}
}

func TestRecordCanonicalDetails(t *testing.T) {
	t.Parallel()
	l, _ := newLog(t, nil, 0)
	if err := l.Record(t.Context(), audit.Entry{Actor: "a", Action: "x", Details: map[string]any{"z": 1, "a": "<b>", "n": 12345678901234567}}); err != nil {
		t.Fatal(err)
	}
	list, _ := l.List(t.Context(), store.AuditListParams{})
	if got := string(list[0].Details); got != `{"a":"<b>","n":12345678901234567,"z":1}` {
		t.Fatalf("details = %s", got)
	}
	if err := l.Record(t.Context(), audit.Entry{Action: "x"}); err == nil {
		t.Fatal("Record without an actor succeeded")
	}
}

func TestHashCoversEveryField(t *testing.T) {
	t.Parallel()
	base := store.AuditEntry{Seq: 1, Time: time.Unix(0, 5), Actor: "a", Action: "b", Team: "c", Target: "d", Details: []byte("{}"), PrevHash: "p"}
	seen := map[string]string{audit.Hash(base): "base"}
	for name, mut := range map[string]func(*store.AuditEntry){
		"seq":    func(e *store.AuditEntry) { e.Seq++ },
		"time":   func(e *store.AuditEntry) { e.Time = e.Time.Add(1) },
		"actor":  func(e *store.AuditEntry) { e.Actor = "ab"; e.Action = "" }, // moving bytes between fields changes the hash
		"team":   func(e *store.AuditEntry) { e.Team = "C" },
		"target": func(e *store.AuditEntry) { e.Target = "" },
		"detail": func(e *store.AuditEntry) { e.Details = []byte("{ }") },
		"prev":   func(e *store.AuditEntry) { e.PrevHash = "q" },
	} {
		e := base
		mut(&e)
		h := audit.Hash(e)
		if other, ok := seen[h]; ok {
			t.Errorf("%s hashes like %s", name, other)
		}
		seen[h] = name
	}
}
