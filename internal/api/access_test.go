package api_test

// The access matrix (issue #14): every route of a fully configured server, called with no
// token, another team's token, a viewer's token and the right token, answers as docs/api.md
// says: 401, 404 (a resource of another team does not exist for you), 403 (too low a
// role), 2xx.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/paved/paved/internal/access"
	"github.com/paved/paved/internal/api"
	"github.com/paved/paved/internal/audit"
	"github.com/paved/paved/internal/cache"
	"github.com/paved/paved/internal/cache/oci"
	"github.com/paved/paved/internal/deploy"
	"github.com/paved/paved/internal/execute/agent"
	"github.com/paved/paved/internal/execute/fake"
	kubeexec "github.com/paved/paved/internal/execute/kube"
	"github.com/paved/paved/internal/gate/sign"
	"github.com/paved/paved/internal/identity"
	"github.com/paved/paved/internal/promote"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/schedule"
	"github.com/paved/paved/internal/secret"
	"github.com/paved/paved/internal/store"
	"github.com/paved/paved/internal/store/sqlite"
	"github.com/paved/paved/internal/trigger"
	"github.com/paved/paved/internal/trigger/inbox"
)

// fakeEnvironments stands in for the deploy controller (it needs built binaries): it knows
// the environments the promotion config names, and rolls back by recording nothing.
type fakeEnvironments struct{ names []string }

func (f fakeEnvironments) Environments() []deploy.EnvironmentStatus {
	out := []deploy.EnvironmentStatus{}
	for _, n := range f.names {
		out = append(out, deploy.EnvironmentStatus{Name: n})
	}
	return out
}

func (f fakeEnvironments) Status(name string) (deploy.EnvironmentStatus, error) {
	if !slices.Contains(f.names, name) {
		return deploy.EnvironmentStatus{}, deploy.ErrUnknownEnvironment
	}
	return deploy.EnvironmentStatus{Name: name}, nil
}

func (f fakeEnvironments) Rollback(_ context.Context, p deploy.RollbackParams, _ deploy.Reporter) (store.Deployment, error) {
	return store.Deployment{ID: "rollback-" + p.Environment, Environment: p.Environment, TriggeredBy: p.By}, nil
}

type noKeys struct{}

func (noKeys) PublicKeys() ([]sign.PublicKey, error) { return nil, nil }

// accessEnv is a server with every optional part, two teams (red owns every resource, blue
// is the other team) and a token per role.
type accessEnv struct {
	t      *testing.T
	url    string
	srv    *api.Server
	acc    *access.Service
	st     *sqlite.Store
	tokens map[string]string // by role name: none, other, viewer, developer, admin, approver, root
	ids    map[string]string // the resources' IDs: run, slowrun, trigger, deployment, freight, promotion...
}

func gitRepo(t *testing.T, pipeline string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ".paved.yml"), []byte(pipeline), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "-A"}, {"-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"}} {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v %s", args, err, out)
		}
	}
	return dir
}

func newAccessEnv(t *testing.T) *accessEnv {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "paved.db"))
	if err != nil {
		t.Fatal(err)
	}
	hub := api.NewHub()
	sched, err := schedule.New(schedule.Config{OnEvent: hub.PublishEvent, OnLog: hub.PublishLogs, LogFlush: 5 * time.Millisecond}, st, &fake.Executor{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sched.Start(ctx); err != nil {
		t.Fatal(err)
	}
	git := &trigger.Git{Dir: t.TempDir()}
	launcher := &inbox.Launcher{Git: git, Scheduler: sched}
	ib, err := inbox.New(inbox.Config{Store: st, Launcher: launcher, Poll: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := oci.New(oci.Config{Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	pcfg, err := promote.ParseConfig("env.yml", []byte("environments:\n  - name: dev\n  - name: staging\n    approval: none\n  - name: prod\n"))
	if err != nil {
		t.Fatal(err)
	}
	dep := historyDeployer{st}
	psvc := promote.New(promote.Options{Config: pcfg, Store: st, Deployer: dep, Tick: time.Hour})
	acc := newAccess(t, st)
	auditLog, err := audit.New(audit.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	key, err := secret.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	ring, err := secret.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	secrets, err := secret.New(secret.Config{Store: st, Keys: ring, Audit: auditLog})
	if err != nil {
		t.Fatal(err)
	}
	var issuerURL string
	iss, err := identity.New(identity.Config{Dir: t.TempDir(), URL: func() string { return issuerURL }})
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := cache.NewBlobs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	disp, err := agent.NewDispatcher(agent.DispatcherConfig{Tokens: st, Blobs: blobs, PollWait: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	// The Kubernetes executor's pod routes; its client is never called here (no stage
	// runs on it), so it points nowhere.
	pods, err := kubeexec.New(kubeexec.Config{Client: kubernetes.NewForConfigOrDie(&rest.Config{Host: "http://127.0.0.1:9"}),
		ServerURL: func() string { return issuerURL }, Dir: t.TempDir(), Blobs: blobs})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{Access: acc, Store: st, Scheduler: sched, Git: git, Hub: hub, Launcher: launcher, Inbox: ib,
		Registry: reg, Metrics: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "paved_up 1\n") }),
		Keys: noKeys{}, Environments: fakeEnvironments{names: []string{"dev", "staging", "prod"}}, Deployments: st, Promote: psvc,
		Alerts: nil, Secrets: secrets, Audit: auditLog, Identity: iss, Agents: disp, AgentTokens: st,
		Pods: pods.Handler()})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	issuerURL = hs.URL
	t.Cleanup(func() { hs.Close(); psvc.Stop(); sched.Stop(); st.Close() })
	e := &accessEnv{t: t, url: hs.URL, srv: srv, acc: acc, st: st, ids: map[string]string{},
		tokens: map[string]string{"none": "", "root": rootToken}}

	// An agent's token, for the agent protocol: no user's token opens it, and it opens
	// nothing else.
	e.tokens["agent"] = agent.NewToken()
	if err := st.AgentTokenCreate(ctx, store.AgentToken{Name: "builder", Hash: agent.HashToken(e.tokens["agent"]), CreatedAt: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}

	// Teams, users and their tokens.
	for _, team := range []string{"red", "blue"} {
		if _, err := acc.TeamAdd(ctx, team); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []struct {
		name, team string
		role       access.Role
		as         string
	}{
		{"vi", "red", access.Viewer, "viewer"}, {"dev", "red", access.Developer, "developer"},
		{"ad", "red", access.Admin, "admin"}, {"ap", "red", access.Viewer, "approver"},
		{"bo", "blue", access.Admin, "other"},
	} {
		if _, err := acc.UserAdd(ctx, access.UserAddParams{Name: u.name, Password: "password-" + u.name}); err != nil {
			t.Fatal(err)
		}
		if _, err := acc.MemberSet(ctx, u.team, u.name, u.role); err != nil {
			t.Fatal(err)
		}
		_, secret, err := acc.TokenCreate(ctx, access.TokenCreateParams{User: u.name, Name: u.as, Team: u.team, Role: u.role})
		if err != nil {
			t.Fatal(err)
		}
		e.tokens[u.as] = secret
	}
	if _, err := acc.ApproverAdd(ctx, "red", "prod", "ap"); err != nil {
		t.Fatal(err)
	}
	if _, err := acc.UserAdd(ctx, access.UserAddParams{Name: "newbie"}); err != nil {
		t.Fatal(err)
	}

	// Red's repos, a finished run and a running one, a trigger, freight, deployments and a
	// promotion waiting for approval; an image in red's registry namespace.
	e.call("root", "POST", "/api/v1/repos", map[string]string{"full_name": "acme/red", "clone_url": gitRepo(t, "stages:\n  build: {steps: [{run: echo built}]}\n"), "team": "red"}, 201, nil)
	e.call("root", "POST", "/api/v1/repos", map[string]string{"full_name": "acme/slow", "clone_url": gitRepo(t, "stages:\n  wait: {steps: [{run: block}]}\n"), "team": "red"}, 201, nil)
	e.call("root", "POST", "/api/v1/repos", map[string]string{"full_name": "acme/blue", "clone_url": gitRepo(t, "stages:\n  build: {steps: [{run: echo blue}]}\n"), "team": "blue"}, 201, nil)
	var created struct{ ID, SHA string }
	e.call("root", "POST", "/api/v1/runs", map[string]string{"repo": "acme/red"}, 201, &created)
	e.ids["run"] = created.ID
	e.waitRun(created.ID)
	e.call("root", "POST", "/api/v1/runs", map[string]string{"repo": "acme/blue"}, 201, &created)
	e.ids["bluerun"] = created.ID
	e.waitRun(created.ID)
	e.call("root", "POST", "/api/v1/runs", map[string]string{"repo": "acme/slow"}, 201, &created)
	e.ids["slowrun"] = created.ID

	added, err := st.TriggerAdd(ctx, store.TriggerAddParams{Triggers: []trigger.Trigger{{ID: "trg-red", Provider: "github", Kind: trigger.KindPush,
		Repo: "acme/red", Ref: "refs/heads/main", SHA: created.SHA, DeliveryID: "d-1", ReceivedAt: time.Now()}}, Window: time.Minute})
	if err != nil || len(added) != 1 {
		t.Fatalf("TriggerAdd = %v, %v", added, err)
	}
	e.ids["trigger"] = added[0].ID

	digest := "sha256:" + strings.Repeat("a", 64)
	for i, sha := range []string{"1111111", "2222222"} {
		arts := map[string]string{"deploy": digest}
		f := store.Freight{Artifacts: arts, Repo: "acme/red", SHA: sha, ConfigHash: "c", RunID: e.ids["run"], Author: "dev", CreatedAt: time.Now()}
		f.ID = promote.FreightID(arts, f.Repo, f.SHA, f.ConfigHash)
		f.Alias = promote.Alias(f.ID)
		if err := st.FreightPut(ctx, f); err != nil {
			t.Fatal(err)
		}
		e.ids[fmt.Sprint("freight", i)] = f.Alias
	}
	d, err := dep.Deploy(ctx, deploy.Request{Spec: deploy.Spec{Environment: "dev"}, Artifact: digest, SHA: "1111111", Repo: "acme/red"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.ids["deployment"] = d.ID
	var p store.Promotion
	e.call("root", "POST", "/api/v1/promotions", map[string]string{"freight": e.ids["freight0"], "environment": "staging"}, 201, &p)
	e.waitPromotion(p.ID, store.PromotionSucceeded)
	e.call("root", "POST", "/api/v1/promotions", map[string]string{"freight": e.ids["freight0"], "environment": "prod"}, 201, &p)
	if p.State != store.PromotionPending {
		t.Fatalf("prod promotion = %+v, want pending", p)
	}
	e.ids["promotion"] = p.ID

	ref, err := name.ParseReference(strings.TrimPrefix(hs.URL, "http://")+"/red/app:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Bearer{Token: e.tokens["developer"]})); err != nil {
		t.Fatalf("push to red's registry namespace with a developer's token: %v", err)
	}
	return e
}

func (e *accessEnv) do(token, method, path string, body any, header http.Header) (int, http.Header, []byte) {
	e.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.url+path, r)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(withToken(req, e.tokens[token]))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, resp.Header, data
}

func (e *accessEnv) call(token, method, path string, body any, want int, out any) {
	e.t.Helper()
	got, _, data := e.do(token, method, path, body, nil)
	if got != want {
		e.t.Fatalf("%s %s as %s = %d %s, want %d", method, path, token, got, data, want)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			e.t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
}

func (e *accessEnv) waitRun(id string) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var v run.Summary
		e.call("root", "GET", "/api/v1/runs/"+id, nil, 200, &v)
		if v.Phase.Done() {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("run %s still %v", id, v.Phase)
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
}

func (e *accessEnv) waitPromotion(id, state string) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var p store.Promotion
		e.call("root", "GET", "/api/v1/promotions/"+id, nil, 200, &p)
		if p.State == state {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("promotion %s is %s, want %s", id, p.State, state)
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
}

// matrixCase is one route's request. right names the token that may make it (default:
// the role the route table asks for, developer for routes any user may call, root for
// server-admin ones). want overrides the statuses for none, other, viewer, right; 0 keeps
// what the route's policy implies; 2 means any 2xx.
type matrixCase struct {
	method, route string
	path          string
	body          any
	header        http.Header
	right         string
	want          [4]int
	// agentAuth: the route answers to an agent's token (the agent protocol), and its 401
	// is the agent handler's, which says so in its body.
	agentAuth bool
	// podAuth: the route answers to a stage pod's token only (internal/execute/kube).
	podAuth bool
}

func (e *accessEnv) cases() []matrixCase {
	id := e.ids
	sse := http.Header{"Accept": {"text/event-stream"}}
	return []matrixCase{
		{method: "GET", route: "/*", path: "/"},
		{method: "GET", route: "/healthz", path: "/healthz"},
		{method: "POST", route: "/hooks/{provider}", path: "/hooks/github", body: map[string]any{}},
		{method: "GET", route: "/metrics", path: "/metrics"},
		{method: "GET", route: "/v2/*", path: "/v2/", want: [4]int{401, 2, 2, 2}},
		{method: "GET", route: "/v2/*", path: "/v2/red/app/tags/list"},
		{method: "HEAD", route: "/v2/*", path: "/v2/red/app/manifests/v1"},
		{method: "POST", route: "/v2/*", path: "/v2/red/app/blobs/uploads/", right: "developer", want: [4]int{401, 404, 403, 2}},
		{method: "GET", route: "/v2/*", path: "/v2/_catalog", right: "root", want: [4]int{401, 403, 403, 2}},

		{method: "POST", route: "/api/v1/login", path: "/api/v1/login", body: map[string]string{"user": "vi", "password": "password-vi"}},
		{method: "GET", route: "/api/v1/me", path: "/api/v1/me"},
		// SSO is not set up here: 404 for everyone (TestOIDCLoginThroughTheAPI has it set up).
		{method: "GET", route: "/api/v1/login/options", path: "/api/v1/login/options"},
		{method: "GET", route: "/api/v1/login/oidc", path: "/api/v1/login/oidc"},
		{method: "GET", route: "/api/v1/login/oidc/callback", path: "/api/v1/login/oidc/callback?state=s&code=c"},
		{method: "GET", route: "/api/v1/users", path: "/api/v1/users"},
		{method: "POST", route: "/api/v1/users", path: "/api/v1/users", body: map[string]string{"name": "carol", "password": "long enough"}},
		// Another user's password: server admins only; one's own is TestUserPasswordAndRemoval's.
		{method: "PUT", route: "/api/v1/users/{name}/password", path: "/api/v1/users/carol/password", body: map[string]string{"password": "reset by root"},
			right: "root", want: [4]int{401, 403, 403, 2}},
		{method: "DELETE", route: "/api/v1/users/{name}", path: "/api/v1/users/carol"},
		{method: "GET", route: "/api/v1/teams", path: "/api/v1/teams"},
		{method: "POST", route: "/api/v1/teams", path: "/api/v1/teams", body: map[string]string{"name": "green"}},
		{method: "GET", route: "/api/v1/teams/{team}/members", path: "/api/v1/teams/red/members"},
		{method: "PUT", route: "/api/v1/teams/{team}/members/{user}", path: "/api/v1/teams/red/members/newbie", body: map[string]string{"role": "developer"}},
		{method: "GET", route: "/api/v1/teams/{team}/approvers", path: "/api/v1/teams/red/approvers"},
		{method: "PUT", route: "/api/v1/teams/{team}/approvers/{env}/{user}", path: "/api/v1/teams/red/approvers/prod/newbie"},
		{method: "DELETE", route: "/api/v1/teams/{team}/approvers/{env}/{user}", path: "/api/v1/teams/red/approvers/prod/newbie"},
		{method: "DELETE", route: "/api/v1/teams/{team}/members/{user}", path: "/api/v1/teams/red/members/newbie"},
		{method: "GET", route: "/api/v1/tokens", path: "/api/v1/tokens"},
		// Asking for more than one has is refused by the service, for anyone not a developer of red.
		{method: "POST", route: "/api/v1/tokens", path: "/api/v1/tokens", body: map[string]string{"team": "red", "role": "developer", "expires_in": "1h"},
			want: [4]int{401, 403, 403, 2}},

		{method: "GET", route: "/api/v1/triggers", path: "/api/v1/triggers"},
		{method: "GET", route: "/api/v1/triggers/{id}", path: "/api/v1/triggers/" + id["trigger"]},
		{method: "POST", route: "/api/v1/repos", path: "/api/v1/repos", body: map[string]string{"full_name": "acme/red2", "clone_url": "/nowhere", "team": "red"}},
		{method: "GET", route: "/api/v1/repos", path: "/api/v1/repos"},
		{method: "POST", route: "/api/v1/runs", path: "/api/v1/runs", body: map[string]string{"repo": "acme/red"}},
		{method: "GET", route: "/api/v1/runs", path: "/api/v1/runs"},
		{method: "GET", route: "/api/v1/runs/{id}", path: "/api/v1/runs/" + id["run"]},
		{method: "GET", route: "/api/v1/runs/{id}/events", path: "/api/v1/runs/" + id["run"] + "/events"},
		{method: "GET", route: "/api/v1/runs/{id}/events", path: "/api/v1/runs/" + id["run"] + "/events", header: sse},
		{method: "GET", route: "/api/v1/runs/{id}/logs", path: "/api/v1/runs/" + id["run"] + "/logs"},
		{method: "GET", route: "/api/v1/runs/{id}/logs", path: "/api/v1/runs/" + id["run"] + "/logs?stage=build", header: sse},
		{method: "GET", route: "/api/v1/runs/{id}/findings", path: "/api/v1/runs/" + id["run"] + "/findings"},
		{method: "POST", route: "/api/v1/runs/{id}/cancel", path: "/api/v1/runs/" + id["slowrun"] + "/cancel"},
		{method: "GET", route: "/api/v1/teams/{team}/quota", path: "/api/v1/teams/red/quota"},
		{method: "PUT", route: "/api/v1/teams/{team}/quota", path: "/api/v1/teams/red/quota", body: map[string]int{"limit": 4}},
		{method: "GET", route: "/api/v1/logs/search", path: "/api/v1/logs/search?q=built"},
		{method: "GET", route: "/api/v1/insights/runs", path: "/api/v1/insights/runs"},
		{method: "GET", route: "/api/v1/insights/alerts", path: "/api/v1/insights/alerts"},
		{method: "GET", route: "/api/v1/insights/tests", path: "/api/v1/insights/tests?repo=acme/red"},
		{method: "GET", route: "/api/v1/insights/dora", path: "/api/v1/insights/dora?environment=dev"},
		{method: "GET", route: "/api/v1/insights/cost", path: "/api/v1/insights/cost"},
		{method: "GET", route: "/api/v1/keys", path: "/api/v1/keys"},
		{method: "POST", route: "/api/v1/pipelines/validate", path: "/api/v1/pipelines/validate", body: "stages: {a: {steps: [{run: x}]}}"},

		{method: "GET", route: "/api/v1/environments", path: "/api/v1/environments"},
		{method: "GET", route: "/api/v1/environments/{env}", path: "/api/v1/environments/dev"},
		{method: "GET", route: "/api/v1/environments/{env}/deployments", path: "/api/v1/environments/dev/deployments"},
		{method: "POST", route: "/api/v1/environments/{env}/rollback", path: "/api/v1/environments/dev/rollback"},
		{method: "GET", route: "/api/v1/deployments/{id}", path: "/api/v1/deployments/" + id["deployment"]},

		{method: "GET", route: "/api/v1/freight", path: "/api/v1/freight"},
		{method: "GET", route: "/api/v1/freight/{id}", path: "/api/v1/freight/" + id["freight0"]},
		{method: "GET", route: "/api/v1/promotions", path: "/api/v1/promotions"},
		{method: "POST", route: "/api/v1/promotions", path: "/api/v1/promotions", body: map[string]string{"freight": id["freight1"], "environment": "staging"}},
		{method: "GET", route: "/api/v1/promotions/{id}", path: "/api/v1/promotions/" + id["promotion"]},
		{method: "GET", route: "/api/v1/approvals", path: "/api/v1/approvals"},
		{method: "GET", route: "/api/v1/approvals/{id}", path: "/api/v1/approvals/" + id["promotion"]},
		{method: "POST", route: "/api/v1/approvals/{id}/approve", path: "/api/v1/approvals/" + id["promotion"] + "/approve"},
		// Approved already by the case above: the approver gets past access to the conflict.
		{method: "POST", route: "/api/v1/approvals/{id}/reject", path: "/api/v1/approvals/" + id["promotion"] + "/reject", want: [4]int{0, 0, 0, 409}},

		{method: "GET", route: "/api/v1/promotion/environments", path: "/api/v1/promotion/environments"},

		// Secrets: names for red's developers, changes by red's admins.
		{method: "PUT", route: "/api/v1/teams/{team}/secrets/{name}", path: "/api/v1/teams/red/secrets/DB_PASSWORD", body: map[string]string{"value": "hunter2-pw"}},
		{method: "GET", route: "/api/v1/teams/{team}/secrets", path: "/api/v1/teams/red/secrets"},
		{method: "DELETE", route: "/api/v1/teams/{team}/secrets/{name}", path: "/api/v1/teams/red/secrets/DB_PASSWORD"},
		{method: "GET", route: "/api/v1/audit", path: "/api/v1/audit"},

		// Agents' tokens: server admins. Their protocol is open to the guard and shut by the
		// agent handler to any but an agent's token (a server admin's included).
		{method: "POST", route: "/api/v1/agents", path: "/api/v1/agents", body: map[string]string{"name": "matrix-1"}},
		{method: "GET", route: "/api/v1/agents", path: "/api/v1/agents"},
		{method: "DELETE", route: "/api/v1/agents/{name}", path: "/api/v1/agents/matrix-1"},
		{method: "POST", route: "/api/v1/agent/claim", path: "/api/v1/agent/claim", body: map[string]any{"agent": "builder", "labels": map[string]string{}},
			agentAuth: true, right: "agent", want: [4]int{401, 401, 401, 204}},
		{method: "POST", route: "/api/v1/agent/claim", path: "/api/v1/agent/claim", body: map[string]any{"agent": "builder", "labels": map[string]string{}},
			agentAuth: true, right: "root", want: [4]int{401, 401, 401, 401}},
		// No job "nope" is held by the agent: past its token, the handler says it is gone.
		{method: "POST", route: "/api/v1/agent/jobs/{id}/heartbeat", path: "/api/v1/agent/jobs/nope/heartbeat", body: map[string]any{},
			agentAuth: true, right: "agent", want: [4]int{401, 401, 401, 410}},
		{method: "POST", route: "/api/v1/agent/jobs/{id}/progress", path: "/api/v1/agent/jobs/nope/progress", body: map[string]any{},
			agentAuth: true, right: "agent", want: [4]int{401, 401, 401, 410}},
		{method: "POST", route: "/api/v1/agent/jobs/{id}/result", path: "/api/v1/agent/jobs/nope/result", body: map[string]any{},
			agentAuth: true, right: "agent", want: [4]int{401, 401, 401, 410}},
		{method: "POST", route: "/api/v1/agent/jobs/{id}/return", path: "/api/v1/agent/jobs/nope/return", body: map[string]any{},
			agentAuth: true, right: "agent", want: [4]int{401, 401, 401, 410}},
		{method: "PUT", route: "/api/v1/agent/blobs/{digest}", path: "/api/v1/agent/blobs/" + agentBlobDigest, body: agentBlob,
			agentAuth: true, right: "agent", want: [4]int{401, 401, 401, 201}},
		{method: "GET", route: "/api/v1/agent/blobs/{digest}", path: "/api/v1/agent/blobs/" + agentBlobDigest,
			agentAuth: true, right: "agent", want: [4]int{401, 401, 401, 200}},

		// Stage pods of the Kubernetes executor: only the token of an attempt being run
		// opens them, which internal/execute/kube's tests use; no user's token does.
		{method: "GET", route: "/api/v1/pod/workspace", path: "/api/v1/pod/workspace",
			podAuth: true, right: "root", want: [4]int{401, 401, 401, 401}},
		{method: "PUT", route: "/api/v1/pod/outputs/{kind}", path: "/api/v1/pod/outputs/artifacts", body: map[string]any{},
			podAuth: true, right: "root", want: [4]int{401, 401, 401, 401}},

		// The workload identity issuer's documents: public, for clouds' STS and Vault.
		{method: "GET", route: "/.well-known/openid-configuration", path: "/.well-known/openid-configuration"},
		{method: "GET", route: "/.well-known/jwks", path: "/.well-known/jwks"},

		{method: "POST", route: "/api/v1/logout", path: "/api/v1/logout"},
		{method: "DELETE", route: "/api/v1/tokens/{id}", path: "/api/v1/tokens/" + e.tokenID("developer"), want: [4]int{401, 404, 404, 2}},
	}
}

// agentBlob is what the matrix uploads to the agent protocol's blob store: the JSON string
// e.do sends, stored under the digest of those bytes.
const agentBlob = "an agent's artifact"

var agentBlobDigest = func() string {
	b, _ := json.Marshal(agentBlob)
	return fmt.Sprintf("sha256:%x", sha256.Sum256(b))
}()

func (e *accessEnv) tokenID(as string) string {
	e.t.Helper()
	ts, err := e.acc.TokenList(e.t.Context(), "dev")
	if err != nil {
		e.t.Fatal(err)
	}
	for _, t := range ts {
		if t.Name == as {
			return t.ID
		}
	}
	e.t.Fatalf("no token %s", as)
	return ""
}

func TestAccessMatrix(t *testing.T) {
	t.Parallel()
	e := newAccessEnv(t)
	cases := e.cases()

	// Every route of the server has a case here: a route added without one fails.
	covered := map[string]bool{}
	for _, c := range cases {
		covered[c.method+" "+c.route] = true
	}
	err := chi.Walk(api.Routes(e.srv), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if _, _, _, ok := api.Policy(method, route); !ok {
			t.Errorf("%s %s has no access policy (internal/api/routes.go)", method, route)
		}
		wildcard := route == "/*" || route == "/v2/*" || route == "/metrics"
		if !covered[method+" "+route] && !(wildcard && covered["GET "+route]) {
			t.Errorf("%s %s has no case in the access matrix (TestAccessMatrix)", method, route)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	for _, c := range cases {
		kind, role, approve, ok := api.Policy(c.method, c.route)
		if !ok {
			t.Errorf("%s %s: no policy", c.method, c.route)
			continue
		}
		want := [4]int{401, 2, 2, 2} // any valid token; lists show only the caller's teams
		right := cmpOr(c.right, "developer")
		switch {
		case kind == "open":
			want = [4]int{-1, -1, -1, -1} // the same answer whoever asks
		case kind == "server-admin":
			want, right = [4]int{401, 403, 403, 2}, cmpOr(c.right, "root")
		case approve:
			want, right = [4]int{401, 404, 403, 2}, cmpOr(c.right, "approver")
		case kind == "team" && role == "viewer":
			want = [4]int{401, 404, 2, 2}
		case kind == "team":
			want, right = [4]int{401, 404, 403, 2}, cmpOr(c.right, role)
		}
		for i, w := range c.want {
			if w != 0 {
				want[i] = w
			}
		}
		var first int
		for i, as := range []string{"none", "other", "viewer", right} {
			got, hdr, body := e.do(as, c.method, c.path, c.body, c.header)
			switch w := want[i]; {
			case w == -1 && i == 0:
				first = got
			case w == -1:
				if got != first {
					t.Errorf("%s %s (open) as %s = %d, but %d without a token", c.method, c.path, as, got, first)
				}
			case w == 2:
				if got < 200 || got > 299 {
					t.Errorf("%s %s as %s = %d %.300s, want 2xx", c.method, c.path, as, got, body)
				}
			case got != w:
				t.Errorf("%s %s as %s = %d %.300s, want %d", c.method, c.path, as, got, body, w)
			}
			switch {
			case got == http.StatusUnauthorized && c.agentAuth && !strings.Contains(string(body), "agent token"):
				// The agent handler's own 401 (internal/execute/agent) says what token it wants.
				t.Errorf("%s %s as %s: 401 %s, want the agent handler's", c.method, c.path, as, body)
			case got == http.StatusUnauthorized && c.podAuth && !strings.Contains(string(body), "stage pod"):
				t.Errorf("%s %s as %s: 401 %s, want the pod handler's", c.method, c.path, as, body)
			}
			if got == http.StatusUnauthorized && hdr.Get("WWW-Authenticate") == "" {
				t.Errorf("%s %s as %s: 401 without WWW-Authenticate", c.method, c.path, as)
			}
		}
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestAccessIsolation: another team's lists, searches, insights and streams show nothing of
// red's, and red's viewer sees red's.
func TestAccessIsolation(t *testing.T) {
	t.Parallel()
	e := newAccessEnv(t)
	count := func(as, path string, pick func(map[string]any) []any) int {
		t.Helper()
		got, _, body := e.do(as, "GET", path, nil, nil)
		if got != 200 {
			t.Fatalf("GET %s as %s = %d %s", path, as, got, body)
		}
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		if l, ok := v.([]any); ok {
			return len(l)
		}
		return len(pick(v.(map[string]any)))
	}
	key := func(k string) func(map[string]any) []any {
		return func(m map[string]any) []any { l, _ := m[k].([]any); return l }
	}
	for _, c := range []struct {
		path             string
		pick             func(map[string]any) []any
		other, viewer, n int
	}{
		{"/api/v1/runs", key("runs"), 1, 2, 3}, // blue's run; red's two
		{"/api/v1/repos", key("repos"), 1, 2, 3},
		{"/api/v1/runs?team=red", key("runs"), 0, 2, 2},
		{"/api/v1/logs/search?q=built", key("lines"), 0, 2, 2}, // "$ echo built" and "built"
		{"/api/v1/logs/search?q=blue", key("lines"), 2, 0, 2},
		{"/api/v1/triggers", key("triggers"), 0, 1, 1},
		{"/api/v1/freight", nil, 0, 2, 2},
		{"/api/v1/promotions", nil, 0, 2, 2},
		{"/api/v1/approvals", nil, 0, 1, 1},
		{"/api/v1/environments", nil, 0, 2, 3}, // prod has no deployment yet: only admins see it
		{"/api/v1/teams", key("teams"), 1, 1, 2},
		{"/api/v1/insights/cost", func(m map[string]any) []any { l, _ := m["teams"].([]any); return l }, 1, 1, 2},
	} {
		if got := count("other", c.path, c.pick); got != c.other {
			t.Errorf("GET %s as blue: %d items, want %d", c.path, got, c.other)
		}
		if got := count("viewer", c.path, c.pick); got != c.viewer {
			t.Errorf("GET %s as red's viewer: %d items, want %d", c.path, got, c.viewer)
		}
		if got := count("root", c.path, c.pick); got != c.n {
			t.Errorf("GET %s as a server admin: %d items, want %d", c.path, got, c.n)
		}
	}
	// Red's run's event stream, asked for with blue's token, does not exist.
	if got, _, _ := e.do("other", "GET", "/api/v1/runs/"+e.ids["run"]+"/events", nil, http.Header{"Accept": {"text/event-stream"}}); got != 404 {
		t.Errorf("red's SSE stream as blue = %d, want 404", got)
	}
	// Blue cannot take red's repo by registering it for blue, nor pull red's image.
	e.call("other", "POST", "/api/v1/repos", map[string]string{"full_name": "acme/red", "clone_url": "/x", "team": "blue"}, 404, nil)
	if got, _, _ := e.do("other", "GET", "/v2/red/app/manifests/v1", nil, nil); got != 404 {
		t.Errorf("red's image as blue = %d, want 404", got)
	}
}

// TestAccessTokens: expired, revoked and unknown tokens are 401 with WWW-Authenticate; the
// user of a request is its token's, whatever X-Paved-User says.
func TestAccessTokens(t *testing.T) {
	t.Parallel()
	e := newAccessEnv(t)
	ctx := t.Context()
	now := time.Now()
	short, err := access.New(access.Config{Store: e.st, Now: func() time.Time { return now.Add(-2 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	_, expired, err := short.TokenCreate(ctx, access.TokenCreateParams{User: "vi", Team: "red", Role: access.Viewer, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var made struct {
		Token string
		Info  access.Token
	}
	e.call("viewer", "POST", "/api/v1/tokens", map[string]string{"name": "ci", "team": "red", "role": "viewer"}, 201, &made)
	e.tokens["expired"], e.tokens["revoked"], e.tokens["bogus"] = expired, made.Token, access.TokenPrefix+"nope"
	e.call("viewer", "DELETE", "/api/v1/tokens/"+made.Info.ID, nil, 200, nil)
	for _, as := range []string{"none", "expired", "revoked", "bogus"} {
		got, hdr, body := e.do(as, "GET", "/api/v1/runs", nil, nil)
		if got != 401 || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer ") {
			t.Errorf("GET /api/v1/runs with a %s token = %d %q %s, want 401 with a Bearer challenge", as, got, hdr.Get("WWW-Authenticate"), body)
		}
		if as != "none" && !strings.Contains(string(body), map[string]string{"expired": "expired", "revoked": "revoked", "bogus": "unknown"}[as]) {
			t.Errorf("401 for a %s token says %s", as, body)
		}
	}
	var me struct {
		User  string
		Teams []struct{ Team, Role string }
	}
	got, _, body := e.do("viewer", "GET", "/api/v1/me", nil, http.Header{api.UserHeader: {"root"}})
	if json.Unmarshal(body, &me); got != 200 || me.User != "vi" || len(me.Teams) != 1 || me.Teams[0].Role != "viewer" {
		t.Errorf("GET /me as vi claiming to be root = %d %s", got, body)
	}
	// The token list shows no secret or hash, and last use is recorded.
	_, _, body = e.do("viewer", "GET", "/api/v1/tokens", nil, nil)
	if strings.Contains(string(body), e.tokens["viewer"]) || strings.Contains(string(body), access.HashToken(e.tokens["viewer"])) || !strings.Contains(string(body), "last_used_at") {
		t.Errorf("GET /tokens shows a secret or hash, or no last use: %s", body)
	}
}

// TestAccessSession: login answers a token and sets an HttpOnly, SameSite=Strict cookie; the
// cookie authenticates reads, and writes only with the CSRF header; logout ends it.
func TestAccessSession(t *testing.T) {
	t.Parallel()
	e := newAccessEnv(t)
	post := func(path string, body any, hdr http.Header) *http.Response {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", e.url+path, bytes.NewReader(b))
		for k, v := range hdr {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := post("/api/v1/login", map[string]string{"user": "dev", "password": "wrong password"}, nil); resp.StatusCode != 401 {
		t.Fatalf("login with a wrong password = %d", resp.StatusCode)
	}
	if resp := post("/api/v1/login", map[string]string{"user": "nobody", "password": "password-dev"}, nil); resp.StatusCode != 401 {
		t.Fatalf("login as nobody = %d", resp.StatusCode)
	}
	resp := post("/api/v1/login", map[string]string{"user": "dev", "password": "password-dev"}, nil)
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == api.SessionCookie {
			cookie = c
		}
	}
	if resp.StatusCode != 200 || cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("login = %d, cookie %+v; want 200 and an HttpOnly SameSite=Strict cookie", resp.StatusCode, cookie)
	}
	withCookie := http.Header{"Cookie": {cookie.String()}}
	if got, _, body := e.do("none", "GET", "/api/v1/runs?team=red", nil, withCookie); got != 200 || !strings.Contains(string(body), e.ids["run"]) {
		t.Errorf("GET /runs with the session cookie = %d %s", got, body)
	}
	run := map[string]string{"repo": "acme/red"}
	if got, _, _ := e.do("none", "POST", "/api/v1/runs", run, withCookie); got != 403 {
		t.Errorf("POST /runs with the cookie and no %s = %d, want 403", api.CSRFHeader, got)
	}
	withCookie.Set(api.CSRFHeader, "1")
	if got, _, body := e.do("none", "POST", "/api/v1/runs", run, withCookie); got != 201 {
		t.Errorf("POST /runs with the cookie and %s = %d %s, want 201", api.CSRFHeader, got, body)
	}
	if got, _, _ := e.do("none", "POST", "/api/v1/logout", nil, withCookie); got != 204 {
		t.Errorf("logout = %d", got)
	}
	if got, _, _ := e.do("none", "GET", "/api/v1/runs", nil, withCookie); got != 401 {
		t.Errorf("GET /runs after logout = %d, want 401", got)
	}
}

// TestAccessChangesAudited: logins (also refused ones), logouts, tokens made and revoked and
// changes of who may do what are in the audit log, by whom, without a password or a token.
func TestAccessChangesAudited(t *testing.T) {
	t.Parallel()
	e := newAccessEnv(t)
	var session struct{ Token string }
	e.call("none", "POST", "/api/v1/login", map[string]string{"user": "vi", "password": "password-vi"}, 200, &session)
	if got, _, body := e.do("none", "POST", "/api/v1/login", map[string]string{"user": "vi", "password": "wrong-guess"}, nil); got != 401 {
		t.Fatalf("a wrong password: %d %s", got, body)
	}
	var made struct {
		Token string
		Info  struct{ ID string }
	}
	e.call("admin", "POST", "/api/v1/tokens", map[string]string{"name": "ci", "team": "red", "role": "viewer", "expires_in": "1h"}, 201, &made)
	e.call("admin", "DELETE", "/api/v1/tokens/"+made.Info.ID, nil, 200, nil)
	e.call("admin", "PUT", "/api/v1/teams/red/members/newbie", map[string]string{"role": "developer"}, 200, nil)
	e.call("admin", "PUT", "/api/v1/teams/red/approvers/prod/newbie", nil, 200, nil)

	var list struct{ Entries []store.AuditEntry }
	e.call("root", "GET", "/api/v1/audit?limit=1000", nil, 200, &list)
	var got []string
	for _, en := range list.Entries {
		switch en.Action {
		case audit.ActionLogin, audit.ActionLoginFailed, audit.ActionTokenCreate, audit.ActionTokenRevoke, audit.ActionAccessChange:
			if en.Actor == "vi" || en.Actor == "ad" {
				got = append(got, en.Actor+" "+en.Action+" "+en.Team)
			}
		}
		raw := string(en.Details)
		for _, secret := range []string{"password-vi", "wrong-guess", made.Token, session.Token} {
			if strings.Contains(raw, secret) || strings.Contains(en.Target, secret) {
				t.Errorf("audit entry %d holds a secret: %+v", en.Seq, en)
			}
		}
	}
	want := []string{
		"vi login ", "vi login.failed ", "ad token.create red", "ad token.revoke red",
		"ad access.change red", "ad access.change red",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit entries of vi and ad:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
