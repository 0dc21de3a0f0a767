package promote_test

import (
	"strings"
	"testing"
	"time"

	"github.com/paved/paved/internal/deploy"
	"github.com/paved/paved/internal/promote"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
	"github.com/paved/paved/internal/trigger"
)

func TestCoveragePolicy(t *testing.T) {
	t.Parallel()
	fx := newFixtureWith(t, `environments:
  - name: dev
  - name: prod
    approval: none
    coverage: {min: 80}
`)
	ctx := t.Context()
	for _, c := range []struct {
		cov   *run.Coverage
		state string
		want  string
	}{
		{&run.Coverage{Format: "go", Covered: 712, Total: 1000, Percent: 71.2}, store.PromotionBlocked, "coverage 71.2% < 80% (prod's coverage.min; 712 of 1000 covered)"},
		{nil, store.PromotionBlocked, "reported no coverage and prod requires 80% (declare reports: {coverage: FILE}"},
		{&run.Coverage{Format: "lcov", Covered: 85, Total: 100, Percent: 85}, store.PromotionSucceeded, "deployed"},
	} {
		f := fx.freightWith(t, fx.commit(t, "main.go"), func(f *store.Freight) { f.Coverage = c.cov })
		p, err := fx.svc.Promote(ctx, f.ID, "prod", "bo")
		if err != nil {
			t.Fatal(err)
		}
		if c.state == store.PromotionSucceeded {
			p = fx.wait(t, p.ID, c.state)
		}
		if p.State != c.state || !strings.Contains(p.Reason, c.want) {
			t.Errorf("coverage %+v: %s (%s), want %s (%s)", c.cov, p.State, p.Reason, c.state, c.want)
		}
	}
}

const timeoutYAML = `environments:
  - name: dev
  - name: prod
    approvers: [bo, cy]
    approval: {mode: risk, timeout: 4h, on_timeout: approve}
  - name: eu
    approvers: [bo]
    approval: {timeout: 1h}
`

// Approval timeouts are decided by the injected clock: 4h of waiting auto-approve a change
// that is not security-critical, and expire one that is (auth code, or gate findings).
func TestApprovalTimeout(t *testing.T) {
	t.Parallel()
	fx := newFixtureWith(t, timeoutYAML)
	ctx := t.Context()
	// What runs in prod now: the changesets below are measured from it.
	base := fx.freight(t, fx.shas[0])
	if _, err := fx.dep.Deploy(ctx, deploy.Request{Spec: deploy.Spec{Environment: "prod"}, Artifact: base.Artifacts["deploy-dev"], Repo: base.Repo, SHA: base.SHA}, nil); err != nil {
		t.Fatal(err)
	}
	request := func(files []string, gates []run.Gate) store.Promotion {
		t.Helper()
		f := fx.freightWith(t, fx.commit(t, files...), func(f *store.Freight) { f.Gates = gates })
		p, err := fx.svc.Promote(ctx, f.ID, "prod", "ana")
		if err != nil {
			t.Fatal(err)
		}
		if p.State != store.PromotionPending {
			t.Fatalf("%v: %s (%s), want pending", files, p.State, p.Reason)
		}
		return p
	}
	// Each changeset holds the ones before it (all are measured from what runs in prod).
	found := request([]string{"cart.go"}, []run.Gate{{Kind: "gate/sarif", Decision: "warn", Counts: map[string]int{"LOW": 2}}})
	plain := request([]string{"handler.go"}, nil)
	auth := request([]string{"internal/auth/login.go"}, nil)

	fx.clk.Add(4*time.Hour - time.Second)
	if err := fx.svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if p, _ := fx.st.PromotionGet(ctx, plain.ID); p.State != store.PromotionPending {
		t.Fatalf("before the timeout: %s (%s)", p.State, p.Reason)
	}
	fx.clk.Add(time.Second)
	if err := fx.svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	p := fx.wait(t, plain.ID, store.PromotionSucceeded)
	if len(p.Decisions) != 1 || p.Decisions[0].By != promote.TimeoutUser || !p.Decisions[0].Approved ||
		!strings.Contains(p.Decisions[0].Reason, "approval timeout: no decision within 4h0m0s; on_timeout: approve") {
		t.Errorf("the timeout's decision = %+v", p.Decisions)
	}
	for id, want := range map[string]string{
		auth.ID:  "not auto-approved because the change is security-critical: internal/auth/login.go matches **/auth/**",
		found.ID: "security-critical: gate gate/sarif has 2 finding(s)",
	} {
		p, _ := fx.st.PromotionGet(ctx, id)
		if p.State != store.PromotionRejected || !strings.Contains(p.Reason, want) || p.Decisions[0].By != promote.TimeoutUser {
			t.Errorf("%s: %s (%s) %+v, want rejected: %s", id, p.State, p.Reason, p.Decisions, want)
		}
	}
}

// on_timeout defaults to reject, and the clock counts from when the promotion started to
// wait for approvals, not from when it was asked for.
func TestApprovalTimeoutRejectsByDefault(t *testing.T) {
	t.Parallel()
	fx := newFixtureWith(t, timeoutYAML)
	ctx := t.Context()
	f := fx.freight(t, fx.shas[0])
	fx.clk.Add(time.Hour)
	p, err := fx.svc.Promote(ctx, f.ID, "prod", "ana")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fx.svc.Decide(ctx, p.ID, "bo", true, ""); err != nil {
		t.Fatal(err)
	}
	fx.wait(t, p.ID, store.PromotionSucceeded)
	p, err = fx.svc.Promote(ctx, f.ID, "eu", "ana")
	if err != nil {
		t.Fatal(err)
	}
	if p.State != store.PromotionPending || !p.PendingSince.Equal(fx.clk.Now()) {
		t.Fatalf("eu: %s since %v", p.State, p.PendingSince)
	}
	fx.clk.Add(time.Hour)
	if err := fx.svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	p, _ = fx.st.PromotionGet(ctx, p.ID)
	if p.State != store.PromotionRejected || p.Reason != "approval timeout: expired after 1h0m0s (on_timeout: reject)" {
		t.Errorf("eu after its timeout: %s (%s)", p.State, p.Reason)
	}
}

// The approval view shows the changeset with its line counts (real git), what changes where,
// and the way back.
func TestApprovalContext(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	ctx := t.Context()
	git := &trigger.Git{Dir: t.TempDir()}
	svc := promote.New(promote.Options{Config: fx.svc.Config(), Store: fx.st, Deployer: fx.dep, Now: fx.clk.Now,
		Changes: promote.GitChanges(git, fx.st.RepoGet), DiffStat: promote.GitDiffStat(git, fx.st.RepoGet)})
	t.Cleanup(svc.Stop)
	base := fx.freight(t, fx.shas[0])
	if _, err := fx.dep.Deploy(ctx, deploy.Request{Spec: deploy.Spec{Environment: "prod", Replicas: 3}, Artifact: base.Artifacts["deploy-dev"], Repo: base.Repo, SHA: base.SHA}, nil); err != nil {
		t.Fatal(err)
	}
	f := fx.freight(t, fx.commit(t, "handler.go", "docs/a.md"))
	fx.clk.Add(time.Hour)
	p, err := svc.Promote(ctx, f.ID, "staging", "bo")
	if err != nil {
		t.Fatal(err)
	}
	fx.wait(t, p.ID, store.PromotionSucceeded)
	fx.clk.Add(time.Hour)
	p, err = svc.Promote(ctx, f.ID, "prod", "bo")
	if err != nil {
		t.Fatal(err)
	}
	a, err := svc.ApprovalGet(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if a.Diff.Files != 2 || a.Diff.Added != 2 || a.Diff.Deleted != 0 || a.Diff.Note != "" {
		t.Errorf("diff = %+v, want 2 files with a line each", a.Diff)
	}
	if a.Affected.FromArtifact != base.Artifacts["deploy-dev"] || a.Affected.ToArtifact != f.Artifacts["deploy-dev"] ||
		a.Affected.Replicas != 3 || a.Affected.FromSHA != base.SHA || a.Affected.ToSHA != f.SHA {
		t.Errorf("affected = %+v", a.Affected)
	}
	if a.Current == nil || !strings.HasPrefix(a.Rollback, "paved rollback prod --to "+a.Current.ID) || len(a.Recent) != 1 {
		t.Errorf("rollback plan %q, current %+v, recent %d", a.Rollback, a.Current, len(a.Recent))
	}
	envs, err := svc.Environments(ctx)
	if err != nil || len(envs) != 3 || envs[2].Name != "prod" || envs[2].Order != 2 || envs[2].Target != "deploy" || envs[2].Current == nil {
		t.Errorf("environments = %+v, %v", envs, err)
	}
}
