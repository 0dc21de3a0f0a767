package audit_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/paved/paved/internal/audit"
	"github.com/paved/paved/internal/store"
	"github.com/paved/paved/internal/store/sqlite"
)

// Appending an audit entry (canonical details, SHA-256 chain) against the floor of the same
// transaction storing a pre-made entry: go test -run '^$' -bench Record ./internal/audit
func BenchmarkRecord(b *testing.B) {
	st, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "paved.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	l, _ := audit.New(audit.Config{Store: st})
	e := audit.Entry{Actor: "run:0190", Action: audit.ActionSecretRead, Team: "payments", Target: "DB_PASSWORD",
		Details: map[string]any{"environment": "prod", "run": "0190", "stage": "deploy"}}
	for b.Loop() {
		if err := l.Record(b.Context(), e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRecordFloorStoreOnly(b *testing.B) {
	st, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "paved.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	details := []byte(`{"environment":"prod","run":"0190","stage":"deploy"}`)
	for b.Loop() {
		_, err := st.AuditAppend(b.Context(), func(h store.AuditHead) (store.AuditEntry, error) {
			return store.AuditEntry{Seq: h.Seq + 1, Time: time.Now(), Actor: "run:0190", Action: audit.ActionSecretRead,
				Team: "payments", Target: "DB_PASSWORD", Details: details, PrevHash: h.Hash, Hash: "x"}, nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
