package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paved/paved/internal/access"
	"github.com/paved/paved/internal/api"
	"github.com/paved/paved/internal/deploy"
	"github.com/paved/paved/internal/execute/fake"
	"github.com/paved/paved/internal/promote"
	"github.com/paved/paved/internal/schedule"
	"github.com/paved/paved/internal/store"
	"github.com/paved/paved/internal/store/sqlite"
	"github.com/paved/paved/internal/trigger"
)

// historyDeployer stands in for the deploy Controller (it needs built binaries): it records
// a succeeded deployment in the real store.
type historyDeployer struct{ st *sqlite.Store }

func (h historyDeployer) Deploy(ctx context.Context, req deploy.Request, _ deploy.Reporter) (store.Deployment, error) {
	cfg, hash := req.Spec.Hash()
	d := store.Deployment{ID: "dep-" + req.Spec.Environment + "-" + time.Now().Format("150405.000000000"), Environment: req.Spec.Environment,
		Artifact: req.Artifact, Config: cfg, ConfigHash: hash, SHA: req.SHA, Repo: req.Repo, Outcome: store.DeploymentInProgress, StartedAt: time.Now()}
	if err := h.st.DeploymentAppend(ctx, d); err != nil {
		return d, err
	}
	d.Outcome, d.FinishedAt = store.DeploymentSucceeded, time.Now()
	return d, h.st.DeploymentFinish(ctx, store.DeploymentFinishParams{ID: d.ID, Outcome: d.Outcome, FinishedAt: d.FinishedAt})
}

func TestPromoteRoutes(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "paved.db"))
	if err != nil {
		t.Fatal(err)
	}
	sched, err := schedule.New(schedule.Config{}, st, &fake.Executor{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := promote.ParseConfig("env.yml", []byte("environments:\n  - name: dev\n  - name: staging\n    approval: none\n  - name: prod\n    approvers: [ana, bo]\n    hotfix_users: [cy]\n"))
	if err != nil {
		t.Fatal(err)
	}
	dep := historyDeployer{st}
	svc := promote.New(promote.Options{Config: cfg, Store: st, Deployer: dep})
	t.Cleanup(svc.Stop)
	acc := newAccess(t, st)
	srv, err := api.New(api.Config{Access: acc, Store: st, Scheduler: sched, Git: &trigger.Git{Dir: t.TempDir()}, Hub: api.NewHub(), Promote: svc, Deployments: st})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); st.Close() })

	// acme/app is team shop's; ana (who wrote the change) and bo may approve into prod, zed
	// is a developer who may not, cy is prod's hotfix user. Each acts with a token of their
	// own.
	if err := st.RepoPut(ctx, trigger.Repo{FullName: "acme/app", CloneURL: "/nowhere", Team: "shop", Provider: "local", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	tokens := map[string]string{"": "", "root": rootToken}
	if _, err := acc.TeamAdd(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"ana", "bo", "zed", "cy"} {
		if _, err := acc.UserAdd(ctx, access.UserAddParams{Name: u}); err != nil {
			t.Fatal(err)
		}
		if _, err := acc.MemberSet(ctx, "shop", u, access.Developer); err != nil {
			t.Fatal(err)
		}
		if u == "ana" || u == "bo" {
			if _, err := acc.ApproverAdd(ctx, "shop", "prod", u); err != nil {
				t.Fatal(err)
			}
		}
		_, secret, err := acc.TokenCreate(ctx, access.TokenCreateParams{User: u, Team: "shop", Role: access.Developer})
		if err != nil {
			t.Fatal(err)
		}
		tokens[u] = secret
	}

	digest := "sha256:" + strings.Repeat("a", 64)
	arts := map[string]string{"deploy": digest}
	f := store.Freight{Artifacts: arts, Repo: "acme/app", SHA: "abc1234", ConfigHash: "c", RunID: "r1", Author: "ana", CreatedAt: time.Now()}
	f.ID = promote.FreightID(arts, f.Repo, f.SHA, f.ConfigHash)
	f.Alias = promote.Alias(f.ID)
	if err := st.FreightPut(ctx, f); err != nil {
		t.Fatal(err)
	}
	if _, err := dep.Deploy(ctx, deploy.Request{Spec: deploy.Spec{Environment: "dev"}, Artifact: digest, SHA: f.SHA, Repo: f.Repo}, nil); err != nil {
		t.Fatal(err)
	}

	call := func(method, path, user string, body any, want int, out any) {
		t.Helper()
		var b []byte
		if body != nil {
			b, _ = json.Marshal(body)
		}
		req, _ := http.NewRequest(method, hs.URL+path, bytes.NewReader(b))
		// The user is the token's: a X-Paved-User header claiming someone else changes nothing.
		req.Header.Set(api.UserHeader, "zed")
		resp, err := http.DefaultClient.Do(withToken(req, tokens[user]))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var raw json.RawMessage
		json.NewDecoder(resp.Body).Decode(&raw)
		if resp.StatusCode != want {
			t.Fatalf("%s %s as %q = %d %s, want %d", method, path, user, resp.StatusCode, raw, want)
		}
		if out != nil {
			if err := json.Unmarshal(raw, out); err != nil {
				t.Fatal(err)
			}
		}
	}
	var fs []store.Freight
	call("GET", "/api/v1/freight", "root", nil, 200, &fs)
	if len(fs) != 1 || fs[0].Alias != f.Alias {
		t.Fatalf("freight = %+v", fs)
	}
	call("GET", "/api/v1/freight/"+f.Alias, "zed", nil, 200, nil)
	call("GET", "/api/v1/freight/f-nope", "root", nil, 404, nil)
	call("POST", "/api/v1/promotions", "", map[string]string{"freight": f.Alias, "environment": "staging"}, 401, nil)
	call("POST", "/api/v1/promotions", "bo", map[string]string{"freight": f.Alias}, 400, nil)
	call("POST", "/api/v1/promotions", "bo", map[string]string{"freight": f.Alias, "environment": "qa"}, 404, nil)
	var p store.Promotion
	call("POST", "/api/v1/promotions", "bo", map[string]string{"freight": f.Alias, "environment": "staging"}, 201, &p)
	deadline := time.Now().Add(10 * time.Second)
	for p.State != store.PromotionSucceeded {
		if time.Now().After(deadline) {
			t.Fatalf("staging promotion = %+v, want succeeded", p)
		}
		time.Sleep(5 * time.Millisecond)
		call("GET", "/api/v1/promotions/"+p.ID, "bo", nil, 200, &p)
	}
	call("POST", "/api/v1/promotions", "bo", map[string]string{"freight": f.ID, "environment": "prod"}, 201, &p)
	if p.State != store.PromotionPending {
		t.Fatalf("prod promotion = %+v, want pending", p)
	}
	call("POST", "/api/v1/promotions", "bo", map[string]string{"freight": f.ID, "environment": "prod"}, 409, nil)
	var approvals []promote.Approval
	call("GET", "/api/v1/approvals?user=ana", "ana", nil, 200, &approvals)
	if len(approvals) != 0 {
		t.Errorf("approvals for ana (the author) = %+v, want none", approvals)
	}
	call("GET", "/api/v1/approvals?user=bo", "zed", nil, 200, &approvals)
	if len(approvals) != 1 || approvals[0].Promotion.ID != p.ID {
		t.Fatalf("approvals for bo = %+v", approvals)
	}
	call("POST", "/api/v1/approvals/"+p.ID+"/approve", "", nil, 401, nil)
	call("POST", "/api/v1/approvals/"+p.ID+"/approve", "ana", nil, 403, nil)
	call("POST", "/api/v1/approvals/"+p.ID+"/approve", "zed", nil, 403, nil)
	call("POST", "/api/v1/approvals/nope/approve", "bo", nil, 404, nil)
	call("POST", "/api/v1/approvals/"+p.ID+"/reject", "bo", map[string]string{"reason": "wait for monday"}, 200, &p)
	if p.State != store.PromotionRejected || p.Decisions[0].Reason != "wait for monday" {
		t.Errorf("after the rejection = %+v", p)
	}
	call("POST", "/api/v1/approvals/"+p.ID+"/approve", "ana", nil, 409, nil)
	var list []store.Promotion
	call("GET", "/api/v1/promotions?freight="+f.Alias+"&environment=prod", "bo", nil, 200, &list)
	if len(list) != 1 || list[0].ID != p.ID {
		t.Errorf("promotions of the alias to prod = %+v", list)
	}

	// The hotfix lane: only a hotfix user, only with a reason.
	call("POST", "/api/v1/promotions", "bo", map[string]any{"freight": f.Alias, "environment": "prod", "hotfix": true, "reason": "down"}, 403, nil)
	call("POST", "/api/v1/promotions", "cy", map[string]any{"freight": f.Alias, "environment": "prod", "hotfix": true}, 400, nil)
	call("POST", "/api/v1/promotions", "cy", map[string]any{"freight": f.Alias, "environment": "prod", "hotfix": true, "reason": "down"}, 201, &p)
	if !p.Hotfix || p.HotfixReason != "down" || p.RequiredApprovals != 1 || p.FollowUp == nil || p.FollowUp.Note == "" {
		t.Errorf("hotfix = %+v, want flagged, one approval, a follow-up note (no run creator here)", p)
	}
	var envs []promote.EnvironmentView
	call("GET", "/api/v1/promotion/environments", "", nil, 401, nil)
	call("GET", "/api/v1/promotion/environments", "zed", nil, 200, &envs)
	if len(envs) != 3 || envs[0].Name != "dev" || envs[2].Name != "prod" || envs[1].Current == nil || envs[2].Target != "deploy" {
		t.Errorf("promotion environments = %+v", envs)
	}
}
