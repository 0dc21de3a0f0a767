package promote_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paved/paved/internal/deploy"
	"github.com/paved/paved/internal/promote"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
	"github.com/paved/paved/internal/store/sqlite"
	"github.com/paved/paved/internal/trigger"
)

// clock is a settable time: soak is tested without waiting for it.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func newClock() *clock               { return &clock{t: time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)} }
func (c *clock) set(t time.Time)     { c.mu.Lock(); c.t = t; c.mu.Unlock() }

var _ = (*clock).set

// recorder stands in for the deploy Controller (which needs built binaries): it records a
// succeeded deployment in the real store, as the Controller does.
type recorder struct {
	st  *sqlite.Store
	now func() time.Time
	mu  sync.Mutex
	got []deploy.Request
}

func (r *recorder) Deploy(ctx context.Context, req deploy.Request, _ deploy.Reporter) (store.Deployment, error) {
	r.mu.Lock()
	r.got = append(r.got, req)
	n := len(r.got)
	r.mu.Unlock()
	cfg, hash := req.Spec.Hash()
	d := store.Deployment{ID: fmt.Sprintf("dep-%d", n), Environment: req.Spec.Environment, Strategy: "rolling", Artifact: req.Artifact,
		Config: cfg, ConfigHash: hash, Repo: req.Repo, SHA: req.SHA, TriggeredBy: req.TriggeredBy,
		Outcome: store.DeploymentInProgress, StartedAt: r.now()}
	if err := r.st.DeploymentAppend(ctx, d); err != nil {
		return d, err
	}
	d.Outcome, d.FinishedAt = store.DeploymentSucceeded, r.now()
	return d, r.st.DeploymentFinish(ctx, store.DeploymentFinishParams{ID: d.ID, Outcome: d.Outcome, FinishedAt: d.FinishedAt})
}

const cfgYAML = `environments:
  - name: dev
  - name: staging
    soak: 1m
    approval: none
  - name: prod
    soak: 2m
    approvers: [ana, bo, cy]
`

type fixture struct {
	st    *sqlite.Store
	clk   *clock
	dep   *recorder
	svc   *promote.Service
	repo  string
	shas  []string
	digit int
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureWith(t, cfgYAML)
}

func newFixtureWith(t *testing.T, cfgYAML string) *fixture {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "paved.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg, err := promote.ParseConfig("paved.yml", []byte(cfgYAML))
	if err != nil {
		t.Fatal(err)
	}
	fx := &fixture{st: st, clk: newClock(), repo: t.TempDir()}
	fx.dep = &recorder{st: st, now: fx.clk.Now}
	if err := st.RepoPut(t.Context(), trigger.Repo{FullName: "acme/app", CloneURL: fx.repo, Provider: "local", CreatedAt: fx.clk.Now()}); err != nil {
		t.Fatal(err)
	}
	gitIn(t, fx.repo, "init", "-q", "-b", "main")
	fx.commit(t, "main.go", "README.md")
	fx.svc = promote.New(promote.Options{Config: cfg, Store: st, Deployer: fx.dep, Now: fx.clk.Now,
		Changes: promote.GitChanges(&trigger.Git{Dir: t.TempDir()}, st.RepoGet)})
	t.Cleanup(fx.svc.Stop)
	return fx
}

func gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=ana", "-c", "user.email=ana@example.com"}, args...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit changes files and returns the new sha.
func (fx *fixture) commit(t *testing.T, files ...string) string {
	t.Helper()
	for _, f := range files {
		p := filepath.Join(fx.repo, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(fmt.Sprint(len(fx.shas), f)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gitIn(t, fx.repo, "add", "-A")
	gitIn(t, fx.repo, "commit", "-q", "-m", "change")
	sha := gitIn(t, fx.repo, "rev-parse", "HEAD")
	fx.shas = append(fx.shas, sha)
	return sha
}

// freight records a freight of sha, deployed to dev by its run.
func (fx *fixture) freight(t *testing.T, sha string) store.Freight {
	t.Helper()
	return fx.freightWith(t, sha, func(*store.Freight) {})
}

// freightWith is freight with what set changes (gates, coverage) before it is stored.
func (fx *fixture) freightWith(t *testing.T, sha string, set func(*store.Freight)) store.Freight {
	t.Helper()
	fx.digit++
	digest := "sha256:" + strings.Repeat(fmt.Sprint(fx.digit), 64)
	arts := map[string]string{"deploy-dev": digest}
	f := store.Freight{Artifacts: arts, Repo: "acme/app", SHA: sha, ConfigHash: "cfg", RunID: "run-" + sha[:6], Author: "ana", CreatedAt: fx.clk.Now()}
	f.ID = promote.FreightID(arts, f.Repo, f.SHA, f.ConfigHash)
	f.Alias = promote.Alias(f.ID)
	set(&f)
	if err := fx.st.FreightPut(t.Context(), f); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.dep.Deploy(t.Context(), deploy.Request{Spec: deploy.Spec{Environment: "dev", Replicas: 2}, Artifact: digest, Repo: f.Repo, SHA: sha}, nil); err != nil {
		t.Fatal(err)
	}
	return f
}

// wait polls a promotion until it reaches state.
func (fx *fixture) wait(t *testing.T, id, state string) store.Promotion {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, err := fx.st.PromotionGet(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if p.State == state {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("promotion %s is %s (%s), want %s", id, p.State, p.Reason, state)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (fx *fixture) only(t *testing.T, freight, env string) store.Promotion {
	t.Helper()
	ps, err := fx.st.PromotionList(t.Context(), store.PromotionListParams{Freight: freight, Environment: env})
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 {
		t.Fatalf("%d promotions of %s to %s, want 1: %+v", len(ps), freight, env, ps)
	}
	return ps[0]
}

func TestSoakAutoPromoteAndApproval(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	ctx := t.Context()
	f := fx.freight(t, fx.shas[0])

	fx.clk.Add(30 * time.Second)
	if err := fx.svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	p := fx.only(t, f.ID, "staging")
	if p.State != store.PromotionBlocked || !strings.HasPrefix(p.Reason, "soak: ") {
		t.Fatalf("staging promotion before soak = %s (%s), want blocked by soak", p.State, p.Reason)
	}
	fx.clk.Add(31 * time.Second)
	if err := fx.svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	staged := fx.wait(t, p.ID, store.PromotionSucceeded)
	if staged.RequestedBy != "auto-promote" || staged.Deployment == "" {
		t.Errorf("staging promotion = %+v, want requested by auto-promote with its deployment", staged)
	}
	// prod is not auto-promoted, and blocked until soaked in staging.
	if err := fx.svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if ps, _ := fx.st.PromotionList(ctx, store.PromotionListParams{Environment: "prod"}); len(ps) != 0 {
		t.Fatalf("prod promotions = %+v, want none: prod has auto_promote off", ps)
	}
	pp, err := fx.svc.Promote(ctx, f.Alias, "prod", "bo")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fx.svc.Promote(ctx, f.Alias, "prod", "cy"); !errors.Is(err, promote.ErrInProgress) {
		t.Errorf("a second promotion to prod = %v, want ErrInProgress", err)
	}
	if pp.State != store.PromotionBlocked || !strings.Contains(pp.Reason, "soak") {
		t.Errorf("prod promotion = %s (%s), want blocked by soak", pp.State, pp.Reason)
	}
	fx.clk.Add(3 * time.Minute)
	if err := fx.svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	pp = fx.wait(t, pp.ID, store.PromotionPending)
	if pp.Risk != promote.RiskMedium || pp.RequiredApprovals != 1 {
		t.Errorf("first prod promotion risk = %s needing %d, want medium needing 1", pp.Risk, pp.RequiredApprovals)
	}
	if _, err := fx.svc.Decide(ctx, pp.ID, "ana", true, ""); !errors.Is(err, promote.ErrAuthor) {
		t.Errorf("the author's approval = %v, want ErrAuthor", err)
	}
	if _, err := fx.svc.Decide(ctx, pp.ID, "zed", true, ""); !errors.Is(err, promote.ErrNotApprover) {
		t.Errorf("a stranger's approval = %v, want ErrNotApprover", err)
	}
	if _, err := fx.svc.Decide(ctx, pp.ID, "bo", true, "looks good"); err != nil {
		t.Fatal(err)
	}
	done := fx.wait(t, pp.ID, store.PromotionSucceeded)
	if len(done.Decisions) != 1 || done.Decisions[0].By != "bo" || done.Decisions[0].Reason != "looks good" {
		t.Errorf("decisions = %+v, want bo's with its reason", done.Decisions)
	}
	fx.dep.mu.Lock()
	defer fx.dep.mu.Unlock()
	var prodSpec deploy.Spec
	digests := map[string]string{}
	for _, r := range fx.dep.got {
		digests[r.Spec.Environment] = r.Artifact
		if r.Spec.Environment == "prod" {
			prodSpec = r.Spec
		}
	}
	if digests["prod"] != digests["staging"] || digests["staging"] != digests["dev"] || digests["prod"] != f.Artifacts["deploy-dev"] {
		t.Errorf("digests deployed = %v, want the freight's %s everywhere", digests, f.Artifacts["deploy-dev"])
	}
	if prodSpec.Replicas != 2 {
		t.Errorf("prod spec = %+v, want dev's settings carried along (replicas 2)", prodSpec)
	}
}

func TestRiskFromChangeset(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	ctx := t.Context()
	f0 := fx.freight(t, fx.shas[0])
	fx.clk.Add(time.Hour)
	p, err := fx.svc.Promote(ctx, f0.ID, "staging", "bo")
	if err != nil {
		t.Fatal(err)
	}
	fx.wait(t, p.ID, store.PromotionSucceeded)
	fx.clk.Add(time.Hour)
	p, err = fx.svc.Promote(ctx, f0.ID, "prod", "bo")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fx.svc.Decide(ctx, p.ID, "cy", true, ""); err != nil {
		t.Fatal(err)
	}
	fx.wait(t, p.ID, store.PromotionSucceeded)

	for _, c := range []struct {
		files    []string
		risk     string
		approval int
	}{
		{[]string{"docs/guide.md", "README.md"}, promote.RiskLow, 0},
		{[]string{"db/migrations/002_add.sql"}, promote.RiskHigh, 2},
		{[]string{"handler.go", "docs/x.md"}, promote.RiskMedium, 1},
	} {
		sha := fx.commit(t, c.files...)
		f := fx.freight(t, sha)
		fx.clk.Add(time.Hour)
		// Straight to prod from dev's verification is not allowed: staging first.
		p, err := fx.svc.Promote(ctx, f.ID, "prod", "bo")
		if err != nil {
			t.Fatal(err)
		}
		if p.State != store.PromotionBlocked || !strings.HasPrefix(p.Reason, "verified: ") {
			t.Errorf("prod before staging = %s (%s), want blocked by verified", p.State, p.Reason)
		}
		s, err := fx.svc.Promote(ctx, f.ID, "staging", "bo")
		if err != nil {
			t.Fatal(err)
		}
		fx.wait(t, s.ID, store.PromotionSucceeded)
		fx.clk.Add(time.Hour)
		if err := fx.svc.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		p, err = fx.st.PromotionGet(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if p.Risk != c.risk || p.RequiredApprovals != c.approval {
			t.Errorf("%v: risk %s needing %d (%s), want %s needing %d", c.files, p.Risk, p.RequiredApprovals, p.RiskReason, c.risk, c.approval)
		}
		switch c.approval {
		case 0:
			fx.wait(t, p.ID, store.PromotionSucceeded)
		case 2:
			if _, err := fx.svc.Decide(ctx, p.ID, "bo", true, "ok"); err != nil {
				t.Fatal(err)
			}
			if p = fx.wait(t, p.ID, store.PromotionPending); !strings.Contains(p.Reason, "1 more") {
				t.Errorf("after one of two approvals: %s", p.Reason)
			}
			if _, err := fx.svc.Decide(ctx, p.ID, "cy", true, "ok"); err != nil {
				t.Fatal(err)
			}
			fx.wait(t, p.ID, store.PromotionSucceeded)
		case 1:
			if _, err := fx.svc.Decide(ctx, p.ID, "cy", false, "not on a friday"); err != nil {
				t.Fatal(err)
			}
			p = fx.wait(t, p.ID, store.PromotionRejected)
			if p.Reason != "rejected by cy: not on a friday" {
				t.Errorf("rejected reason = %q", p.Reason)
			}
			if _, err := fx.svc.Decide(ctx, p.ID, "bo", true, ""); !errors.Is(err, promote.ErrNotPending) {
				t.Errorf("approving a rejected promotion = %v, want ErrNotPending", err)
			}
		}
	}
}

func TestPromoteErrors(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	ctx := t.Context()
	f := fx.freight(t, fx.shas[0])
	if _, err := fx.svc.Promote(ctx, f.ID, "qa", "bo"); !errors.Is(err, promote.ErrUnknownEnvironment) || !strings.Contains(err.Error(), "dev, staging, prod") {
		t.Errorf("unknown environment = %v", err)
	}
	if _, err := fx.svc.Promote(ctx, "f-nope", "prod", "bo"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown freight = %v, want ErrNotFound", err)
	}
	if _, err := fx.svc.Promote(ctx, f.ID, "prod", ""); !errors.Is(err, promote.ErrNoUser) {
		t.Errorf("no user = %v, want ErrNoUser", err)
	}
	g := f
	g.Gates = []run.Gate{{Kind: "gate/vulns", Decision: "warn", Reason: "1 finding at or above HIGH warn in dev", Environment: "dev",
		Counts: map[string]int{"HIGH": 1, "LOW": 2}}}
	g.ID = promote.FreightID(map[string]string{"x": "sha256:" + strings.Repeat("9", 64)}, g.Repo, g.SHA, g.ConfigHash)
	g.Alias = promote.Alias(g.ID)
	if err := fx.st.FreightPut(ctx, g); err != nil {
		t.Fatal(err)
	}
	p, err := fx.svc.Promote(ctx, g.Alias, "staging", "bo")
	if err != nil {
		t.Fatal(err)
	}
	if want := "gate gate/vulns: 1 HIGH at or above HIGH block staging under staging's rule (paved-default@1)"; p.State != store.PromotionBlocked || p.Reason != want {
		t.Errorf("promotion of gated freight = %s (%s), want blocked: %s", p.State, p.Reason, want)
	}
}

// A promotion a stopped server left approved is deployed when the next one starts.
func TestResumeAfterRestart(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	ctx := t.Context()
	f := fx.freight(t, fx.shas[0])
	p := store.Promotion{ID: "prm-left", Freight: f.ID, Environment: "staging", State: store.PromotionApproved,
		Risk: promote.RiskLow, RequestedBy: "auto-promote", CreatedAt: fx.clk.Now(), UpdatedAt: fx.clk.Now()}
	if err := fx.st.PromotionAppend(ctx, p); err != nil {
		t.Fatal(err)
	}
	fx.svc.Start()
	done := fx.wait(t, p.ID, store.PromotionSucceeded)
	if done.Deployment == "" {
		t.Errorf("resumed promotion = %+v, want its deployment", done)
	}
}

// Freight that dev already replaced is not auto-promoted: only what runs there moves on.
func TestAutoPromoteOnlyWhatRuns(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	ctx := t.Context()
	old := fx.freight(t, fx.shas[0])
	cur := fx.freight(t, fx.commit(t, "main.go"))
	fx.clk.Add(time.Hour)
	if err := fx.svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if ps, _ := fx.st.PromotionList(ctx, store.PromotionListParams{Freight: old.ID}); len(ps) != 0 {
		t.Errorf("promotions of replaced freight = %+v, want none", ps)
	}
	fx.wait(t, fx.only(t, cur.ID, "staging").ID, store.PromotionSucceeded)
}
