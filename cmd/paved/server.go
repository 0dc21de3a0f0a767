package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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

	"github.com/paved/paved/internal/api"
	"github.com/paved/paved/internal/cache"
	"github.com/paved/paved/internal/cache/oci"
	"github.com/paved/paved/internal/deploy"
	deploykube "github.com/paved/paved/internal/deploy/kube"
	"github.com/paved/paved/internal/execute"
	kubeexec "github.com/paved/paved/internal/execute/kube"
	"github.com/paved/paved/internal/execute/local"
	"github.com/paved/paved/internal/insight"
	"github.com/paved/paved/internal/promote"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/schedule"
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
	// kube selects and configures the Kubernetes executor (docs/kubernetes.md).
	kube kubeOptions
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
	o.kube.flags(cmd)
	cmd.Flags().DurationVar(&o.dedupWindow, "dedup-window", 10*time.Minute, "webhook de-duplication window (same provider, repo, ref, sha, kind, action); 0 keeps only delivery ids")
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// serverStore is what the server's parts need of a store (each declares its own
// interface), and Close. Both stores have it.
type serverStore interface {
	schedule.Store
	api.Store
	inbox.Store
	deploy.History
	api.Deployments
	promote.Store
	Close() error
}

// openStore opens the store --database names, or SQLite in the data directory.
func openStore(ctx context.Context, database, data string) (serverStore, error) {
	switch {
	case database == "":
		return sqlite.Open(ctx, filepath.Join(data, "paved.db"))
	case strings.HasPrefix(database, "postgres://") || strings.HasPrefix(database, "postgresql://"):
		st, err := postgres.Open(ctx, database)
		if err != nil {
			return nil, err
		}
		// One server per database until runs have leases. The wait covers a server
		// killed a moment ago, whose session PostgreSQL has yet to end.
		if err := st.LockServer(ctx, 10*time.Second); err != nil {
			st.Close()
			return nil, err
		}
		return st, nil
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
	http    *http.Server
	done    chan error
}

// envSecrets resolves a pipeline secret NAME from the server's environment variable
// PAVED_SECRET_NAME (until teams keep secrets in paved itself).
func envSecrets(_ context.Context, _ *run.Info, name string) (string, error) {
	if v, ok := os.LookupEnv("PAVED_SECRET_" + name); ok {
		return v, nil
	}
	return "", fmt.Errorf("not set: start the server with PAVED_SECRET_%s in its environment", name)
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
	st, err := openStore(ctx, o.database, data)
	if err != nil {
		return nil, err
	}
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
	var ex execute.Executor
	detach := func() {}
	if o.kube.executor == "kubernetes" {
		var kex *kubeexec.Executor
		if kex, err = o.kube.executorFor(logger); err == nil {
			ex, detach = kex, kex.Close
		}
	} else if o.kube.executor != "local" {
		err = fmt.Errorf("--executor %q: use local or kubernetes", o.kube.executor)
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
	kubeTarget := deploykube.New(deploykube.Config{Logger: logger})
	deployer, err := deploy.New(deploy.Config{Dir: filepath.Join(data, "deploy"), Blobs: artifacts, History: st, Logger: logger,
		Verify: supply.verify, Kubernetes: kubeTarget.DeployFunc})
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
	kinds, err := makeKinds(kindEnv{Data: data, Artifacts: artifacts, Logger: logger, Deploy: deployer, Supply: supply})
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
	sched, err := schedule.New(schedule.Config{
		Capacity: o.capacity, Secrets: envSecrets, Kinds: kinds, Attest: supply.attest,
		TeamQuotas: quotas, DefaultTeamQuota: o.defaultTeamQuota, HotfixBranches: o.hotfixBranches,
		Quarantine: &insight.TestHistory{Store: st},
		OnEvent:    onEvent, OnLog: hub.PublishLogs, OnStageStart: metrics.StageStarted, Logger: logger,
	}, st, ex)
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
	git := &trigger.Git{Dir: filepath.Join(data, "git")}
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
	ib, err := inbox.New(inbox.Config{Store: st, Launcher: launcher, Window: window, Wake: wake, Cron: true, Logger: logger})
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
		Webhooks: o.alertWebhooks, Interval: 5 * time.Minute, Logger: logger,
	})
	if err != nil {
		sched.Stop()
		st.Close()
		return nil, err
	}
	var promoter *promote.Service
	var promoteAPI api.Promoter // stays a nil interface without --environments: no routes
	if promoteCfg != nil {
		promoter = promote.New(promote.Options{Config: *promoteCfg, Store: st, Deployer: deployer,
			Changes: promote.GitChanges(git, st.RepoGet), Logger: logger})
		promoteAPI = promoter
	}
	a, err := api.New(api.Config{
		Store: st, Scheduler: sched, Git: git, Hub: hub,
		Compile: compileOptions(), Logger: logger, Registry: reg, Launcher: launcher, Inbox: ib,
		Metrics: metrics.Handler(), OnHook: metrics.Hook, Alerts: alerts, Environments: deployer, Deployments: st, Keys: supply.signer.Keys,
		CPUHourPrice: o.cpuHourPrice, Promote: promoteAPI,
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
	s := &server{
		URL:   "http://" + ln.Addr().String(),
		store: st, sched: sched, detach: detach, deploy: deployer, inbox: ib, done: make(chan error, 1),
		http: &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second},
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
	s.alerts, s.tracer = alerts, tracer
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
	s.inbox.Stop() // before the scheduler: a trigger being routed may still create a run
	if s.promote != nil {
		s.promote.Stop() // before the deploy controller: it ends the promotions' deployments
	}
	s.detach() // before the scheduler stops: its stages' pods keep running
	s.sched.Stop()
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
