package main

import (
	"context"

	"github.com/paved/paved/internal/deploy"
	"github.com/paved/paved/internal/pipeline"
	"github.com/paved/paved/internal/promote"
	"github.com/paved/paved/internal/schedule"
)

// deployBuiltins is the deploy: stage kind (internal/deploy). It deploys through the
// server's controller; `paved run` has none (its environments would die with it), so there
// a deploy: stage fails and says where to run it.
func deployBuiltins() []builtin {
	return []builtin{{name: "deploy", make: func(env kindEnv) (schedule.Kind, error) {
		if env.Deploy == nil {
			return noDeploy{}, nil
		}
		var k schedule.Kind = deploy.Kind{C: env.Deploy}
		if env.Supply != nil {
			k = sbomAttached{next: k, sc: env.Supply, blobs: env.Artifacts}
		}
		if env.PreviewLabel != "" {
			k = promote.PreviewKind{Next: k, Label: env.PreviewLabel}
		}
		return k, nil
	}}}
}

type noDeploy struct{}

func (noDeploy) Run(context.Context, schedule.KindJob, schedule.KindRecorder) (schedule.KindResult, error) {
	return schedule.KindResult{Failed: true, Reason: "deploy: stages run in a paved server, which keeps the environments; " +
		"paved run has none (use paved server or paved demo)"}, nil
}

// withoutDeploys is p without its deploy: stages and the stages that need them: paved run
// has no environments to deploy to (they live in a server), so it runs everything up to
// the deployments. It returns the names left out.
func withoutDeploys(p *pipeline.Pipeline) (*pipeline.Pipeline, []string) {
	drop := map[string]bool{}
	for _, s := range p.Stages {
		if s.Deploy != nil {
			drop[s.Name] = true
			for _, d := range p.Downstream(s.Name) {
				drop[d] = true
			}
		}
	}
	if len(drop) == 0 {
		return p, nil
	}
	out := *p
	out.Stages = nil
	var names []string
	for _, s := range p.Stages {
		if drop[s.Name] {
			names = append(names, s.Name)
			continue
		}
		out.Stages = append(out.Stages, s)
	}
	return &out, names
}
