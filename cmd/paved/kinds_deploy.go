package main

import (
	"context"

	"github.com/paved/paved/internal/deploy"
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
		return deploy.Kind{C: env.Deploy}, nil
	}}}
}

type noDeploy struct{}

func (noDeploy) Run(context.Context, schedule.KindJob, schedule.KindRecorder) (schedule.KindResult, error) {
	return schedule.KindResult{Failed: true, Reason: "deploy: stages run in a paved server, which keeps the environments; " +
		"paved run has none (use paved server or paved demo)"}, nil
}
