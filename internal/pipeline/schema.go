package pipeline

import (
	"regexp"
	"time"
)

// The pipeline file, key by key. docs/pipeline.md is the user's reference; this table is the
// maintainer's, and the key lists below are what the parser accepts. Anywhere a list is
// expected, a single item stands for a list of one (needs: build). Scalars are kept as
// written ("1.20" stays "1.20"). Variable names (env, matrix keys, secrets) must not start
// with PAVED_, which the scheduler sets. YAML anchors, aliases and << merge keys work
// everywhere; top-level keys starting with "x-" and stage keys starting with "." are
// ignored so they can hold anchored templates.
//
//	key                              type                         default / rule
//	-------------------------------  ---------------------------  ------------------------------------------
//	name                             string                       "pipeline"
//	on                               map, event name or list      push, pull_request and manual on every branch
//	on.push|pull_request|tag         null or map (Filter)         null or {} means every ref
//	on.*.branches|tags               list of globs                empty matches all
//	on.*.paths|paths_ignore          list of globs                empty matches all
//	on.pull_request.labels           list of label names          empty matches all; else the PR needs one
//	on.manual                        bool                         false (true when on: is absent)
//	on.cron                          list of 5-field crontabs     also @hourly, @daily, @weekly, ...
//	concurrency.group                string, required             expanded at run time ($PAVED_BRANCH)
//	concurrency.cancel_superseded    bool                         false
//	concurrency.limit                int >= 1                     1
//	env                              map NAME -> value            value: scalar or {secret: NAME}
//	shell                            sh | bash                    sh; the default of every stage
//	stages                           map name -> stage, required  file order is kept; name ^[A-Za-z0-9][A-Za-z0-9_.-]*$
//	stages.*.needs                   list of stage names          a matrix stage's name means all its expansions
//	stages.*.steps                   list of string or {name,run} non-empty; exactly one of steps, uses, deploy
//	stages.*.uses                    string                       a built-in kind from Options.Kinds
//	stages.*.with.KEY                scalar or list of scalars    only on uses: stages; KEY from Options.KindKeys
//	stages.*.deploy.environment      string, required             name like a stage name
//	stages.*.deploy.strategy         rolling|blue-green|canary    rolling; needs "deploy" in Options.Kinds
//	stages.*.deploy.artifact         relative path                the only executable among upstream artifacts
//	stages.*.deploy.replicas|port    int 1..100 | 1..65535        1 | a free port
//	stages.*.deploy.args|env         list | map of strings        none
//	stages.*.deploy.startup|readiness|liveness  probe map         see deployProbeKeys; readiness: port open
//	stages.*.deploy.readiness_timeout|drain|pause|keep_warm|slo_window  Go duration  120s|30s|0|30m|0
//	stages.*.deploy.max_surge|max_unavailable   N or N%           25% | 0
//	stages.*.deploy.steps            list of ints, increasing     5, 25, 50, 100 (100 added if missing)
//	stages.*.deploy.preview_port     int 1..65535                 a free port
//	stages.*.deploy.analysis         map, see deployAnalysisKeys  docs/deploy.md
//	stages.*.deploy.smoke            list of {path, status, body} none
//	stages.*.env                     map                          merged over the pipeline env
//	stages.*.shell                   sh | bash                    the pipeline's shell
//	stages.*.timeout                 Go duration, 0 < d <= 24h    DefaultTimeout
//	stages.*.retries                 int 0..10                    0
//	stages.*.when.branches           list of globs                empty matches all
//	stages.*.when.events             list of event names          push, pull_request, tag, manual, cron
//	stages.*.when.paths              list of globs                one changed file must match
//	stages.*.matrix.KEY              list of scalars              KEY is an env var name; <= 256 expansions
//	stages.*.matrix.exclude          list of maps KEY -> value    drops combinations containing all pairs
//	stages.*.artifacts               list of globs                relative, no ".."
//	stages.*.cache[].key             string                       derived from the stage and key_files
//	stages.*.cache[].key_files       list of globs                relative, no ".."
//	stages.*.cache[].paths           list of globs, required      relative, no ".."
//	stages.*.cache[].restore_keys    list of strings              none
//	stages.*.image                   string                       none (container executors only)
//	stages.*.runs_on.LABEL           string                       none (runs on the server's executor)
//	stages.*.resources.cpu|memory|cpu_limit|memory_limit  quantity (500m, 1Gi)  none (container executors only)
//	stages.*.deploy.target           local | kubernetes           local
//	stages.*.deploy.kubernetes       map, see deployKubernetesKeys   docs/kubernetes.md
//	stages.*.deploy.kubernetes.http_route  HTTPRoute name, canary only  none (split by replicas)
//	stages.*.reports.junit|coverage  glob                         relative, no ".."
//	stages.*.phase                   build|test|deploy|verify     derived, see Stage.Phase
//	stages.*.id_token.audience       string, required             none
//	stages.*.id_token.lifetime       duration, 1m..1h             10m (the issuer's default)
//	manifests                        list of directories          detected (docs/forge.md)

var (
	topKeys         = []string{"name", "on", "concurrency", "env", "shell", "manifests", "stages"}
	onKeys          = []string{"push", "pull_request", "tag", "manual", "cron"}
	filterKeys      = []string{"branches", "tags", "paths", "paths_ignore", "labels"}
	concurrencyKeys = []string{"group", "cancel_superseded", "limit"}
	stageKeys       = []string{"needs", "steps", "uses", "deploy", "env", "shell", "timeout", "retries",
		"with", "when", "matrix", "artifacts", "cache", "image", "resources", "runs_on", "reports", "phase", "id_token"}
	idTokenKeys = []string{"audience", "lifetime"}
	stepKeys    = []string{"name", "run"}
	whenKeys    = []string{"branches", "events", "paths"}
	cacheKeys   = []string{"key", "key_files", "paths", "restore_keys"}
	deployKeys  = []string{"environment", "strategy", "artifact", "replicas", "port", "args", "env", "startup",
		"readiness", "liveness", "readiness_timeout", "drain", "max_surge", "max_unavailable", "steps", "pause",
		"preview_port", "keep_warm", "analysis", "smoke", "slo_window", "target", "kubernetes"}
	resourcesKeys        = []string{"cpu", "memory", "cpu_limit", "memory_limit"}
	deployKubernetesKeys = []string{"context", "namespace", "kubeconfig", "image", "container_port", "http_route"}
	targets              = []string{"local", "kubernetes"}
	deployProbeKeys      = []string{"path", "initial_delay", "period", "timeout", "success_threshold", "failure_threshold"}
	deployAnalysisKeys   = []string{"interval", "count", "failure_limit", "consecutive_error_limit", "min_samples",
		"inconclusive_timeout", "max_error_rate", "max_p99_increase", "p99_slack", "max_restarts", "memory_limit",
		"source", "prometheus"}
	deploySmokeKeys      = []string{"path", "status", "body"}
	deployPrometheusKeys = []string{"url", "requests", "error_rate", "p99"}
	reportsKeys          = []string{"junit", "coverage"}

	shells     = []string{"sh", "bash"}
	events     = []string{"push", "pull_request", "tag", "manual", "cron"}
	strategies = []string{"rolling", "blue-green", "canary"}
	phases     = []string{"build", "test", "deploy", "verify"}
)

// otherCI maps keys that mean the same thing in GitHub Actions, GitLab CI or Woodpecker to
// ours: edit distance cannot connect "script" to "steps", but a user coming from GitLab types it.
var otherCI = map[string]string{
	"jobs":         "stages",
	"variables":    "env",
	"environment":  "env",
	"script":       "steps",
	"commands":     "steps",
	"run":          "steps",
	"depends_on":   "needs",
	"dependencies": "needs",
	"retry":        "retries",
	"rules":        "when",
	"if":           "when",
	"only":         "when",
	"parallel":     "matrix",
	"strategy":     "matrix",
	"container":    "image",
	"triggers":     "on",
	"command":      "run",
	"include":      "paths",
	"exclude":      "paths_ignore",
	"branch":       "branches",
	"event":        "events",
	"path":         "paths",
}

var (
	stageNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	envNameRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

const (
	maxTimeout = 24 * time.Hour // a stage beyond it is stuck, not slow
	maxRetries = 10
	// maxExpansions bounds one matrix stage: beyond it a typo in a list multiplies the load
	// on the executors instead of failing fast.
	maxExpansions = 256
	// maxCombinations bounds the work of applying exclude before the cap above is checked.
	maxCombinations = 1 << 16
	// maxNodes bounds the document after aliases are expanded, so a small file of nested
	// aliases (a "billion laughs") cannot make Compile allocate without limit.
	maxNodes = 1 << 20
	// maxStages bounds a pipeline after matrix expansion: the run's state, the UI and the
	// scheduler handle every stage, and no real pipeline comes near it.
	maxStages = 1000
	// maxWork bounds what compiling may build: the values of each stage times its
	// expansions, plus the needs of every expansion. Within maxNodes and maxStages a file
	// could still ask for 1000 copies of a large aliased list.
	maxWork = 1 << 22
	maxName = 60 // step names shown in the UI
)
