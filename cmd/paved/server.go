package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/paved/paved/internal/access"
	"github.com/paved/paved/internal/api"
	"github.com/paved/paved/internal/audit"
	"github.com/paved/paved/internal/cache"
	"github.com/paved/paved/internal/cache/oci"
	"github.com/paved/paved/internal/deploy"
	deploykube "github.com/paved/paved/internal/deploy/kube"
	"github.com/paved/paved/internal/egress"
	"github.com/paved/paved/internal/execute"
	"github.com/paved/paved/internal/execute/agent"
	kubeexec "github.com/paved/paved/internal/execute/kube"
	"github.com/paved/paved/internal/execute/local"
	"github.com/paved/paved/internal/forge"
	"github.com/paved/paved/internal/identity"
	"github.com/paved/paved/internal/insight"
	"github.com/paved/paved/internal/promote"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/schedule"
	"github.com/paved/paved/internal/secret"
	"github.com/paved/paved/internal/store"
	"github.com/paved/paved/internal/store/postgres"
	"github.com/paved/paved/internal/store/sqlite"
	"github.com/paved/paved/internal/trigger"
	"github.com/paved/paved/internal/trigger/inbox"
)

// serverOptions are the flags shared by server and demo.
type serverOptions struct {
	data     string
	database string // postgres://... selects the PostgreSQL store; "" the SQLite file in data
	addr     string
	capacity int
	sandbox  string
	// dedupWindow: webhook triggers with the same dedup key inside it are duplicates.
	dedupWindow time.Duration
	// Scheduling: per-team limits of running stages and the hotfix branches.
	teamQuotas       []string // TEAM=N
	defaultTeamQuota int
	hotfixBranches   []string
	// deployAllow are ENV=REPO[@REF] rules of what each environment deploys.
	deployAllow []string
	// otlpEndpoint gets a trace per run (OTLP/HTTP); empty: no tracing.
	otlpEndpoint string
	// alertWebhooks receive alert notifications (insight.AlertConfig.Webhooks).
	alertWebhooks []string
	// cpuHourPrice prices CPU time in GET /api/v1/insights/cost.
	cpuHourPrice float64
	// environments is the promotion config file (docs/promote.md); "" means no promotion.
	environments string
	// secretKeyFile holds the keys secrets are sealed with; "" means DATA/secret.key
	// (PAVED_SECRET_KEY in the environment replaces it).
	secretKeyFile string
	// auditRetention is how long audit entries are kept (docs/audit.md).
	auditRetention time.Duration
	// egressAllow and egressDeny are CIDRs and host globs for the URLs paved fetches
	// (internal/egress; docs/secrets.md#egress).
	egressAllow, egressDeny []string
	// bootstrapToken (PAVED_BOOTSTRAP_TOKEN) becomes a server-admin token on first start.
	bootstrapToken string
	// forgeRunOnly reports one commit status per run, none per stage.
	forgeRunOnly bool
	// externalURL is how users and forges reach this server (run links, the OIDC issuer);
	// "" means the listen address.
	externalURL string
	// executor is "local" (the default: stages run in this server's sandbox, runs_on stages
	// on agents) or "agents" (every stage on agents).
	executor string
	// lease is how long a run's lease lasts without renewal (PostgreSQL: many servers), and
	// agentLease a job's on an agent. 0: the defaults (15s; 2/3 of lease).
	lease, agentLease time.Duration
	// agentRetries is how often a stage whose agent was lost runs again (0: never).
	agentRetries int
	// kube selects and configures the Kubernetes executor (docs/kubernetes.md).
	kube kubeOptions
	// access: stream rechecks and OIDC login (cmd/paved/access.go, docs/access.md).
	access accessOptions
}

// quotas parses --team-quota TEAM=N flags.
func (o *serverOptions) quotas() (map[string]int, error) {
	out := map[string]int{}
	for _, f := range o.teamQuotas {
		team, n, ok := strings.Cut(f, "=")
		v, err := strconv.Atoi(n)
		if !ok || team == "" || err != nil || v < 0 {
			return nil, usageErr("--team-quota %q: want TEAM=N with N running stages (0: no limit)", f)
		}
		out[team] = v
	}
	return out, nil
}

func (o *serverOptions) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.data, "data", envOr("PAVED_DATA", ""), "data directory (env PAVED_DATA; default ~/.cache/paved/server)")
	cmd.Flags().StringVar(&o.database, "database", envOr("PAVED_DATABASE", ""), "postgres://USER:PASSWORD@HOST/DB?sslmode=...: keep the store in PostgreSQL (env PAVED_DATABASE; default: SQLite in the data directory)")
	cmd.Flags().StringVar(&o.addr, "addr", "127.0.0.1:8080", "listen address; port 0 picks a free port")
	cmd.Flags().IntVar(&o.capacity, "capacity", 4, "stages that run at once")
	cmd.Flags().StringVar(&o.sandbox, "sandbox", "auto", "stage isolation: auto, bubblewrap or process-group")
	cmd.Flags().StringArrayVar(&o.teamQuotas, "team-quota", nil, "TEAM=N: at most N stages of TEAM run at once (repeatable; 0 = no limit)")
	cmd.Flags().IntVar(&o.defaultTeamQuota, "default-team-quota", 0, "running stages allowed to a team without --team-quota (0 = no limit)")
	cmd.Flags().StringArrayVar(&o.hotfixBranches, "hotfix-branch", []string{"hotfix/*"}, "glob of branches whose runs are in the hotfix priority class (repeatable)")
	cmd.Flags().StringArrayVar(&o.deployAllow, "deploy-allow", nil, "ENV=REPO[@REF]: environment ENV deploys only artifacts built from REPO (and REF) (globs, repeatable; ENV * for all)")
	cmd.Flags().StringVar(&o.otlpEndpoint, "otlp-endpoint", os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT"), "OTLP/HTTP endpoint (http://host:4318) that gets a trace per run (env OTEL_EXPORTER_OTLP_ENDPOINT; default none)")
	cmd.Flags().StringArrayVar(&o.alertWebhooks, "alert-webhook", nil, "URL that gets alert notifications as Slack-compatible JSON (repeatable)")
	cmd.Flags().Float64Var(&o.cpuHourPrice, "cpu-hour-price", insight.DefaultCPUHourPrice, "price of one CPU-hour of stages, for GET /api/v1/insights/cost")
	cmd.Flags().StringVar(&o.environments, "environments", envOr("PAVED_ENVIRONMENTS", ""), "YAML file of the promotion path: environments, soak, approvals (docs/promote.md; env PAVED_ENVIRONMENTS)")
	cmd.Flags().StringVar(&o.secretKeyFile, "secret-key-file", "", "file of the keys that seal teams' secrets, made (mode 0600) when missing (default DATA/secret.key; env PAVED_SECRET_KEY holds base64 keys instead)")
	cmd.Flags().DurationVar(&o.auditRetention, "audit-retention", audit.DefaultRetention, "how long audit entries are kept before pruning (default 12 months; negative: forever); the chain stays verifiable")
	cmd.Flags().StringArrayVar(&o.egressAllow, "egress-allow", nil, "CIDR, IP or host glob that clone URLs and webhooks may reach although internal (e.g. 127.0.0.1, 10.0.0.0/8, git.corp.example) (repeatable)")
	cmd.Flags().StringArrayVar(&o.egressDeny, "egress-deny", nil, "CIDR, IP or host glob that clone URLs and webhooks may not reach, beyond loopback, private, link-local and metadata addresses (repeatable)")
	o.bootstrapToken = os.Getenv("PAVED_BOOTSTRAP_TOKEN")
	cmd.Flags().StringVar(&o.externalURL, "external-url", envOr("PAVED_EXTERNAL_URL", ""), "URL users and forges reach this server at: links in commit statuses and PR comments, the workload identity issuer (env PAVED_EXTERNAL_URL; default http://ADDR)")
	cmd.Flags().BoolVar(&o.forgeRunOnly, "forge-run-status-only", false, "report one commit status per run to the forge, none per stage (docs/forge.md)")
	cmd.Flags().StringVar(&o.executor, "executor", "local", "where stages run: local (this server's sandbox), agents (every stage on a paved agent) or kubernetes (one pod per stage); stages with runs_on always go to agents")
	cmd.Flags().DurationVar(&o.lease, "lease", 15*time.Second, "with PostgreSQL: how long a server's hold on a run lasts without renewal; the runs of a dead server move to the others after it")
	cmd.Flags().DurationVar(&o.agentLease, "agent-lease", 0, "how long an agent keeps a job without a heartbeat (default 2/3 of --lease)")
	cmd.Flags().IntVar(&o.agentRetries, "agent-retries", 2, "how many times a stage whose agent was lost runs again on another (reason agent_lost); 0: never")
	o.kube.flags(cmd)
	o.access.flags(cmd)
	cmd.Flags().DurationVar(&o.dedupWindow, "dedup-window", 10*time.Minute, "webhook de-duplication window (same provider, repo, ref, sha, kind, action); 0 keeps only delivery ids")
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// serverStore is what the server's parts need of a store (each declares its own
// interface), and Close. Both stores have it. The API's optional trigger inbox is listed
// too, so that a store without one fails here rather than at the first request.
type serverStore interface {
	TeamQuotaList(ctx context.Context) (map[string]int, error)
	schedule.Store
	api.Store
	api.TriggerStore
	inbox.Store
	deploy.History
	api.Deployments
	promote.Store
	secret.Store
	audit.Store
	access.Store
	api.AgentTokens
	agent.Tokens
	Close() error
}

// openStore opens the store --database names, or SQLite in the data directory.
func openStore(ctx context.Context, database, data string) (serverStore, error) {
	switch {
	case database == "":
		return sqlite.Open(ctx, filepath.Join(data, "paved.db"))
	case strings.HasPrefix(database, "postgres://") || strings.HasPrefix(database, "postgresql://"):
		// Any number of servers share the database: each drives the runs it holds a
		// lease on (schedule.Config.Leases).
		return postgres.Open(ctx, database)
	}
	return nil, usageErr("--database: want a postgres:// or postgresql:// URL, or nothing for SQLite in the data directory")
}

// server is a running paved server: store, executor, scheduler and HTTP API.
type server struct {
	URL   string
	store serverStore
	sched *schedule.Scheduler
	// detach lets the executor's stages outlive the server (Kubernetes pods are re-attached
	// to after a restart); a no-op for the local executor.
	detach  func()
	deploy  *deploy.Controller
	inbox   *inbox.Inbox
	alerts  *insight.Alerter
	tracer  *insight.Tracer  // nil without --otlp-endpoint
	promote *promote.Service // nil without --environments
	audit   *audit.Log
	egress  *egress.Proxy
	access  *access.Service
	forge   *forge.Reporter
	http    *http.Server
	done    chan error
}

// stageIdentity gives a stage with id_token: its token as PAVED_ID_TOKEN.
func stageIdentity(iss *identity.Issuer) func(context.Context, schedule.StageEnvParams) (map[string]string, error) {
	return func(ctx context.Context, p schedule.StageEnvParams) (map[string]string, error) {
		if p.Def == nil || p.Def.IDToken == nil {
			return nil, nil
		}
		req := identity.Request{Info: p.Info, RunID: p.RunID, Stage: p.Stage, Attempt: p.Attempt,
			Audience: p.Def.IDToken.Audience, Lifetime: p.Def.IDToken.Lifetime}
		if p.Def.Deploy != nil {
			req.Environment = p.Def.Deploy.Environment
		}
		tok, err := iss.Issue(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("workload identity token: %w", err)
		}
		return map[string]string{"PAVED_ID_TOKEN": tok}, nil
	}
}

func startServer(ctx context.Context, o serverOptions, logger *slog.Logger) (*server, error) {
	if o.data == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return nil, usageErr("no --data given and no user cache dir: %v", err)
		}
		o.data = filepath.Join(dir, "paved", "server")
	}
	quotas, err := o.quotas()
	if err != nil {
		return nil, err
	}
	if o.executor == "" {
		o.executor = "local"
	}
	if o.executor != "local" && o.executor != "agents" && o.executor != "kubernetes" {
		return nil, usageErr("--executor %q: want local, agents or kubernetes", o.executor)
	}
	if o.lease == 0 {
		o.lease = 15 * time.Second
	}
	if o.agentLease == 0 {
		o.agentLease = o.lease * 2 / 3
	}
	if o.lease < 100*time.Millisecond || o.agentLease >= o.lease {
		return nil, usageErr("--lease %s, --agent-lease %s: want a lease of 100ms or more and an agent lease below it (an agent of a dead server must stop before another server re-runs its stage)", o.lease, o.agentLease)
	}
	if !(o.cpuHourPrice > 0) {
		return nil, usageErr("--cpu-hour-price %v: want a positive price of one CPU-hour (default %v)", o.cpuHourPrice, insight.DefaultCPUHourPrice)
	}
	var promoteCfg *promote.Config
	if o.environments != "" {
		c, err := promote.LoadConfig(o.environments)
		if err != nil {
			return nil, usageErr("--environments: %v", err)
		}
		promoteCfg = &c
	}
	data, err := filepath.Abs(o.data)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	keys, err := openKeys(data, o.secretKeyFile)
	if err != nil {
		return nil, err
	}
	egressPolicy, err := egress.New(egress.Config{Allow: o.egressAllow, Deny: o.egressDeny})
	if err != nil {
		return nil, usageErr("--egress-allow/--egress-deny: %v", err)
	}
	for _, u := range o.alertWebhooks {
		if err := egressPolicy.CheckURL(ctx, u); err != nil {
			return nil, usageErr("--alert-webhook: %v", err)
		}
	}
	st, err := openStore(ctx, o.database, data)
	if err != nil {
		return nil, err
	}
	auditLog, err := audit.New(audit.Config{Store: st, Retention: o.auditRetention, Logger: logger})
	if err != nil {
		st.Close()
		return nil, err
	}
	secrets, err := secret.New(secret.Config{Store: st, Keys: keys, Audit: auditLog})
	if err != nil {
		st.Close()
		return nil, err
	}
	// Deployments and promotions are audited as they are written: the deploy controller and
	// the promotion service get the audited store; everything else the store itself, whose
	// optional methods (PostgreSQL's leases, notifications, the trigger inbox) a wrapper
	// would hide from type assertions.
	audited := auditedStore{serverStore: st, log: auditLog, err: func(action string, err error) {
		logger.Error("cannot record an audit entry", "action", action, "err", err)
	}}
	// Quotas set through the API win over the flags: they are the operator's later word.
	kept, err := st.TeamQuotaList(ctx)
	if err != nil {
		st.Close()
		return nil, err
	}
	maps.Copy(quotas, kept)
	depCache, err := cache.Open(cache.Config{Dir: filepath.Join(data, "cache"), Logger: logger})
	if err != nil {
		st.Close()
		return nil, err
	}
	// Artifacts by digest, apart from the dependency cache: its eviction removes the blobs
	// no cache entry names, which would be every artifact.
	artifacts, err := cache.NewBlobs(filepath.Join(data, "artifacts"))
	if err != nil {
		st.Close()
		return nil, err
	}
	// The listen address is known only after Listen; until then nothing asks for the URL.
	var listenURL string
	externalURL := func() string {
		if o.externalURL != "" {
			return strings.TrimSuffix(o.externalURL, "/")
		}
		return listenURL
	}
	var ex execute.Executor
	var pods http.Handler
	detach := func() {}
	if o.executor == "kubernetes" {
		var kex *kubeexec.Executor
		if kex, err = o.kube.executorFor(logger, filepath.Join(data, "kube"), artifacts, externalURL); err == nil {
			ex, detach, pods = kex, kex.Close, kex.Handler()
		}
	} else {
		ex, err = local.New(local.Config{
			Root: filepath.Join(data, "workspaces"), Sandbox: o.sandbox, Hide: []string{data}, Cache: depCache,
			Artifacts: artifacts, Logger: logger,
		})
	}
	if err != nil {
		st.Close()
		return nil, err
	}
	// The deploy controller brings every environment back to its last successful
	// deployment before the scheduler re-runs an interrupted deploy stage.
	supply, err := newSupplyChain(data, o.deployAllow)
	if err != nil {
		st.Close()
		return nil, err
	}
	// With PostgreSQL, servers share the store: one owner name for its leases of runs
	// and environments.
	owner := schedule.DefaultOwner()
	var envLeases deploy.Leases
	if pg, ok := st.(*postgres.Store); ok {
		envLeases = pg
	}
	kubeTarget := deploykube.New(deploykube.Config{Logger: logger})
	deployer, err := deploy.New(deploy.Config{Dir: filepath.Join(data, "deploy"), Blobs: artifacts, History: audited, Logger: logger,
		Verify: supply.verify, Leases: envLeases, Owner: owner, LeaseTTL: o.lease, Kubernetes: kubeTarget.DeployFunc,
		KubernetesResume: kubeTarget.Resume})
	if err == nil {
		err = deployer.Start(ctx)
	}
	if err != nil {
		st.Close()
		return nil, err
	}
	served := false
	defer func() {
		if !served {
			deployer.Stop() // its replicas are processes: never leave them behind a failed start
		}
	}()
	previewLabel := ""
	if promoteCfg != nil && !promoteCfg.Previews.Disabled {
		previewLabel = promoteCfg.Previews.Label
	}
	kinds, err := makeKinds(kindEnv{Data: data, Artifacts: artifacts, Logger: logger, Deploy: deployer, Supply: supply, PreviewLabel: previewLabel})
	if err != nil {
		st.Close()
		return nil, err
	}
	hub := api.NewHub()
	metrics := insight.NewMetrics()
	metrics.WatchCache(func() (int64, int64, int64) {
		c := depCache.Stats()
		return c.Hits, c.Partials, c.Misses
	})
	metrics.Register(deployer)
	onEvent := func(e run.Event) { hub.PublishEvent(e); metrics.Event(e) }
	var tracer *insight.Tracer
	if o.otlpEndpoint != "" {
		if tracer, err = insight.NewTracer(ctx, o.otlpEndpoint); err != nil {
			st.Close()
			return nil, usageErr("--otlp-endpoint: %v", err)
		}
		onEvent = func(e run.Event) { hub.PublishEvent(e); metrics.Event(e); tracer.Event(e) }
	}
	issuer, err := identity.New(identity.Config{Dir: filepath.Join(data, "identity"), URL: externalURL, Logger: logger})
	if err != nil {
		st.Close()
		return nil, err
	}
	// Stages on agents: runs_on stages always, every stage with --executor agents.
	dispatcher, err := agent.NewDispatcher(agent.DispatcherConfig{Tokens: st, Blobs: artifacts, Lease: o.agentLease, Logger: logger})
	if err != nil {
		st.Close()
		return nil, err
	}
	// http(s) clones and fetches dial through the egress policy (git does its own dialing).
	egressProxy, err := egressPolicy.StartProxy(logger)
	if err != nil {
		st.Close()
		return nil, err
	}
	defer func() {
		if !served {
			egressProxy.Stop()
		}
	}()
	git := &trigger.Git{Dir: filepath.Join(data, "git"), Proxy: egressProxy.URL}
	// Commit statuses and PR comments; started before the scheduler so the events of the
	// runs it resumes are reported too.
	composer := &forge.Composer{Trees: forge.GitTrees(git), URL: externalURL}
	if promoteCfg != nil {
		risk := promoteCfg.Risk
		composer.Risk = func(files []string) (string, string) { return risk.Score(files, true) }
	}
	reporter, err := forge.NewReporter(forge.Config{
		Forge: forge.Resolver(st.RepoGet, forgeSecret(secrets), nil),
		Events: func(ctx context.Context, id string) ([]run.Event, error) {
			return st.EventList(ctx, store.EventListParams{RunID: id})
		},
		Comment: composer.Compose, URL: externalURL, Dir: filepath.Join(data, "forge-queue"),
		RunOnly: o.forgeRunOnly, Logger: logger,
	})
	if err == nil {
		err = reporter.Start(ctx)
	}
	if err != nil {
		st.Close()
		return nil, err
	}
	defer func() {
		if !served {
			reporter.Stop()
		}
	}()
	metrics.Register(reporter)
	publish := onEvent
	onEvent = func(e run.Event) { publish(e); reporter.OnEvent(e) }
	var stageExec execute.Executor = ex
	if o.executor == "agents" {
		stageExec = dispatcher
	}
	// A store shared with other servers (PostgreSQL) gets run leases, cancels relayed to a
	// run's owner and claimed triggers.
	var (
		leases schedule.Leases
		relay  schedule.CancelRelay
		claim  func(context.Context, int) ([]store.TriggerRecord, error)
	)
	if pg, ok := st.(*postgres.Store); ok {
		leases, relay = pg, pg
		claim = func(ctx context.Context, n int) ([]store.TriggerRecord, error) {
			now := time.Now()
			return pg.TriggerClaim(ctx, postgres.TriggerClaimParams{Owner: owner, Limit: n, Now: now, Until: now.Add(4 * o.lease)})
		}
	}
	lostRetries := o.agentRetries
	if lostRetries <= 0 {
		lostRetries = -1 // schedule reads 0 as its default
	}
	sched, err := schedule.New(schedule.Config{
		Leases: leases, CancelRelay: relay, Owner: owner, LeaseTTL: o.lease, Remote: dispatcher, LostRetries: lostRetries,
		Capacity: o.capacity, Secrets: storeSecrets(secrets), Kinds: kinds, Attest: supply.attest, StageEnv: stageIdentity(issuer),
		TeamQuotas: quotas, DefaultTeamQuota: o.defaultTeamQuota, HotfixBranches: o.hotfixBranches,
		Quarantine: &insight.TestHistory{Store: st},
		OnEvent:    onEvent, OnLog: hub.PublishLogs, OnStageStart: metrics.StageStarted, Logger: logger,
	}, st, stageExec)
	if err != nil {
		st.Close()
		return nil, err
	}
	metrics.WatchLoad(func() insight.Load {
		st := sched.Stats()
		return insight.Load{Capacity: st.Capacity, Running: st.Running, Queued: st.Queued, RunningByTeam: st.RunningByTeam}
	})
	metrics.WatchInbox(func() int {
		// Bounded: a scrape must stay cheap however far behind the inbox is.
		ts, err := st.TriggerList(context.Background(), store.TriggerListParams{Pending: true, Limit: 10000})
		if err != nil {
			return -1
		}
		return len(ts)
	})
	if err := sched.Start(ctx); err != nil {
		st.Close()
		return nil, err
	}
	reg, err := oci.New(oci.Config{Dir: filepath.Join(data, "registry"), Logger: logger, Sign: supply.signPayload})
	if err != nil {
		sched.Stop()
		st.Close()
		return nil, err
	}
	// Manual runs and webhook triggers share one launcher; the inbox starts once we listen.
	launcher := &inbox.Launcher{Git: git, Scheduler: sched, Compile: compileOptions()}
	window := o.dedupWindow
	if window == 0 {
		window = -1 // the inbox reads 0 as "the default"; the flag's 0 means none
	}
	// A store shared with other processes (PostgreSQL) says when they add triggers.
	var wake <-chan struct{}
	if n, ok := st.(interface {
		TriggerNotify(context.Context) (<-chan struct{}, error)
	}); ok {
		if wake, err = n.TriggerNotify(ctx); err != nil {
			sched.Stop()
			st.Close()
			return nil, err
		}
	}
	ib, err := inbox.New(inbox.Config{Store: st, Launcher: launcher, Window: window, Wake: wake, Claim: claim, Cron: true, Logger: logger})
	if err != nil {
		sched.Stop()
		st.Close()
		return nil, err
	}
	alerts, err := insight.NewAlerter(insight.AlertConfig{
		Sources: insight.AlertSources{
			Runs: func(ctx context.Context, since time.Time) ([]*run.State, error) {
				states, _, err := insight.Runs(ctx, st, "", "", since, time.Time{})
				return states, err
			},
			QueueDepth: func() int { return sched.Stats().QueuedTotal() },
			CacheHits: func() (int64, int64) {
				c := depCache.Stats()
				return c.Hits, c.Hits + c.Partials + c.Misses
			},
		},
		Webhooks: o.alertWebhooks, Interval: 5 * time.Minute, Logger: logger, Client: egressPolicy.Client(10 * time.Second),
	})
	if err != nil {
		sched.Stop()
		st.Close()
		return nil, err
	}
	var promoter *promote.Service
	var promoteAPI api.Promoter // stays a nil interface without --environments: no routes
	if promoteCfg != nil {
		promoter = promote.New(promote.Options{Config: *promoteCfg, Store: audited, Deployer: deployer,
			Changes: promote.GitChanges(git, st.RepoGet), DiffStat: promote.GitDiffStat(git, st.RepoGet), Logger: logger,
			CreateRun: func(ctx context.Context, info run.Info) (string, error) {
				return sched.Create(ctx, schedule.CreateParams{Info: info})
			},
			Triggers: st.TriggerList,
			Teardown: func(ctx context.Context, env, reason string) error {
				if err := deployer.Teardown(ctx, env, reason); errors.Is(err, deploy.ErrUnknownEnvironment) {
					return fmt.Errorf("%w: %w", promote.ErrPreviewGone, err)
				} else if err != nil {
					return err
				}
				return nil
			}})
		promoteAPI = promoter
	}
	acc, err := access.New(o.access.config(st, logger))
	if err != nil {
		sched.Stop()
		st.Close()
		return nil, err
	}
	if err := o.access.startOIDC(ctx, acc, externalURL); err != nil {
		sched.Stop()
		st.Close()
		return nil, err
	}
	if o.bootstrapToken != "" {
		created, err := acc.Bootstrap(ctx, o.bootstrapToken)
		if err != nil {
			sched.Stop()
			st.Close()
			return nil, usageErr("PAVED_BOOTSTRAP_TOKEN: %v", err)
		}
		if created {
			logger.Info("paved server: made a server-admin token from PAVED_BOOTSTRAP_TOKEN (user admin)")
		}
	} else if ts, err := st.TokenList(ctx, access.TokenListParams{}); err == nil && len(ts) == 0 {
		logger.Warn("paved server: no API token exists yet, so nobody can call the API; start once with PAVED_BOOTSTRAP_TOKEN=<a secret of 16+ characters> (docs/access.md)")
	}
	a, err := api.New(api.Config{
		Access: acc, Store: st, Scheduler: sched, Git: git, Hub: hub,
		Compile: compileOptions(), Logger: logger, Registry: reg, Launcher: launcher, Inbox: ib,
		Metrics: metrics.Handler(), OnHook: metrics.Hook, Alerts: alerts, Environments: deployer, Deployments: st, Keys: supply.signer.Keys,
		CPUHourPrice: o.cpuHourPrice, Promote: promoteAPI, Secrets: secrets, Audit: auditLog, Egress: egressPolicy, Identity: issuer,
		AgentTokens: st, Agents: dispatcher, Pods: pods,
	})
	if err != nil {
		sched.Stop()
		st.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		sched.Stop()
		st.Close()
		return nil, usageErr("listen on %s: %v", o.addr, err)
	}
	listenURL = "http://" + ln.Addr().String()
	s := &server{
		URL:   listenURL,
		store: st, sched: sched, detach: detach, deploy: deployer, inbox: ib, access: acc, done: make(chan error, 1),
		http: api.NewHTTPServer(a.Handler(), api.Timeouts{}), audit: auditLog, egress: egressProxy,
	}
	// Before serving: Add needs a started inbox, and Start takes up what a previous
	// process left pending.
	if err := ib.Start(ctx); err != nil {
		ln.Close()
		sched.Stop()
		st.Close()
		return nil, err
	}
	if err := alerts.Start(ctx); err != nil {
		ln.Close()
		sched.Stop()
		st.Close()
		return nil, err
	}
	s.alerts, s.tracer, s.forge = alerts, tracer, reporter
	auditLog.Start(ctx)
	if promoter != nil {
		promoter.Start()
		s.promote = promoter
	}
	served = true
	go func() { s.done <- s.http.Serve(ln) }()
	logger.Info("paved server listening", "url", s.URL, "data", data)
	return s, nil
}

// shutdown stops taking requests, stops running stages (they re-run on the next start) and
// closes the store.
func (s *server) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.http.Shutdown(ctx)
	s.alerts.Stop()
	s.audit.Stop()
	s.inbox.Stop() // before the scheduler: a trigger being routed may still create a run
	if s.promote != nil {
		s.promote.Stop() // before the deploy controller: it ends the promotions' deployments
	}
	s.detach() // before the scheduler stops: its stages' pods keep running
	s.sched.Stop()
	s.egress.Stop() // after the scheduler and inbox: no clone or fetch is under way
	s.forge.Stop()  // after the scheduler: its last events are queued; the rest is sent next start
	s.deploy.Stop() // after the scheduler: no deploy stage runs any more
	if s.tracer != nil {
		_ = s.tracer.Shutdown(ctx) // flushes the spans of what ended
	}
	_ = s.store.Close()
}

func serverCmd() *cobra.Command {
	var o serverOptions
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Serve the HTTP API and run pipelines (embedded SQLite store or --database PostgreSQL, local sandboxed executor)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			s, err := startServer(ctx, o, newLogger())
			if err != nil {
				return err
			}
			select {
			case <-ctx.Done():
			case err = <-s.done:
			}
			s.shutdown()
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				return &exitError{code: 1, err: err}
			}
			return nil
		},
	}
	o.flags(cmd)
	return cmd
}

func newLogger() *slog.Logger {
	level := slog.LevelInfo
	if strings.EqualFold(os.Getenv("PAVED_LOG"), "debug") {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}
