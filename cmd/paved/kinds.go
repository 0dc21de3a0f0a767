package main

import (
	"fmt"
	"log/slog"
	"slices"

	"github.com/paved/paved/internal/cache"
	"github.com/paved/paved/internal/deploy"
	"github.com/paved/paved/internal/pipeline"
	"github.com/paved/paved/internal/schedule"
)

// kindEnv is what the built-in stage kinds are made from: the server's (or paved run's) own
// parts, never anything a step can reach.
type kindEnv struct {
	// Data is the data directory; a kind keeps its own state under Data/<its name>.
	Data string
	// Artifacts is the artifact store: upstream artifacts are read from it by digest, and a
	// kind's own outputs (an SBOM) are stored in it.
	Artifacts *cache.Blobs
	Logger    *slog.Logger
	// Supply signs and attests in the server (nil in paved run): the deploy kind attaches
	// the run's SBOM to what it deploys.
	Supply *supplyChain
	// Deploy is the server's deploy controller (environments and their replicas); nil in
	// paved run.
	Deploy *deploy.Controller
	// PreviewLabel, when set, sends the deploy: stages of pull requests carrying it to
	// their preview environment pr-<number> (promote.PreviewKind); the server sets it when
	// it has a promotion config, which tears previews down when their pull request closes.
	PreviewLabel string
}

// builtin is one built-in stage kind of this binary.
type builtin struct {
	name string   // as a pipeline names it: uses: NAME, or "deploy" for deploy: stages
	keys []string // the keys its stages may set under with:
	make func(env kindEnv) (schedule.Kind, error)
}

// builtins lists every built-in stage kind of this binary; each capability adds its own.
func builtins() []builtin { return slices.Concat(gateBuiltins(), deployBuiltins()) }

// compileOptions lists what this build can run, for every place that compiles a pipeline.
func compileOptions() pipeline.Options {
	var o pipeline.Options
	for _, b := range builtins() {
		o.Kinds = append(o.Kinds, b.name)
		if len(b.keys) > 0 {
			if o.KindKeys == nil {
				o.KindKeys = map[string][]string{}
			}
			o.KindKeys[b.name] = b.keys
		}
	}
	return o
}

// makeKinds makes every built-in kind for a scheduler.
func makeKinds(env kindEnv) (map[string]schedule.Kind, error) {
	out := map[string]schedule.Kind{}
	for _, b := range builtins() {
		k, err := b.make(env)
		if err != nil {
			return nil, fmt.Errorf("stage kind %s: %w", b.name, err)
		}
		out[b.name] = k
	}
	return out, nil
}
