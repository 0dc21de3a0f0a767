package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paved/paved/internal/audit"
	"github.com/paved/paved/internal/store"
	"github.com/paved/paved/internal/store/sqlite"
)

// The server's store decorator audits what the deploy controller and the promotion service
// write: deployments, rollbacks (asked for and automatic), promotions and decisions.
func TestAuditedStore(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	raw, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "paved.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	log, err := audit.New(audit.Config{Store: raw})
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	st := auditedStore{serverStore: raw, log: log, err: func(a string, err error) { failed = append(failed, a+": "+err.Error()) }}
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	d := store.Deployment{ID: "d1", Environment: "prod", Strategy: "canary", Artifact: "sha256:ab", Version: "v1",
		Config: []byte(`{}`), ConfigHash: "c", TriggeredBy: "run:r1", Outcome: store.DeploymentInProgress, StartedAt: t0}
	if err := st.DeploymentAppend(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := st.DeploymentFinish(ctx, store.DeploymentFinishParams{ID: "d1", Outcome: store.DeploymentRolledBack, Reason: "p99", FinishedAt: t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	d2 := d
	d2.ID, d2.TriggeredBy, d2.RollbackOf, d2.StartedAt = "d2", "ana", "d0", t0.Add(2*time.Minute)
	if err := st.DeploymentAppend(ctx, d2); err != nil {
		t.Fatal(err)
	}
	p := store.Promotion{ID: "p1", Freight: "f1", Environment: "prod", State: store.PromotionPending, Risk: "high",
		RequiredApprovals: 2, RequestedBy: "ben", CreatedAt: t0, UpdatedAt: t0}
	if err := st.PromotionAppend(ctx, p); err != nil {
		t.Fatal(err)
	}
	p.Version = 1
	p.Decisions = []store.Decision{{By: "carol", Approved: true, At: t0}, {By: "dan", Approved: false, Reason: "not now", At: t0}}
	p.State = store.PromotionRejected
	if _, err := st.PromotionUpdate(ctx, p); err != nil {
		t.Fatal(err)
	}
	entries, err := log.List(ctx, store.AuditListParams{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Actor+" "+e.Action+" "+e.Target)
	}
	want := []string{"run:r1 deployment.start prod", "system rollback prod", "ana rollback prod",
		"ben promotion.create p1", "carol approval.grant p1", "dan approval.reject p1"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") || len(failed) > 0 {
		t.Fatalf("audited:\n%s\nwant:\n%s\nfailures: %v", strings.Join(got, "\n"), strings.Join(want, "\n"), failed)
	}
	if r, err := log.Verify(ctx); err != nil || r.Entries != 6 {
		t.Fatalf("Verify = %+v, %v", r, err)
	}
}
