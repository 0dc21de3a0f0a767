package run

import "testing"

// finishDeploy ends a stage as a deploy stage does: its DeploymentFinished, then failed.
func (x *sim) finishDeploy(stage, outcome string) {
	x.t.Helper()
	x.apply(Event{Type: StageStarted, Stage: stage},
		Event{Type: DeploymentFinished, Stage: stage, Deployment: &Deployment{ID: "d", Environment: "prod", Outcome: outcome}},
		Event{Type: StageFinished, Stage: stage, Status: StatusFailed, Reason: outcome})
	x.next()
}

// TestNextRolledBack: a run whose only failure is a deployment that rolled back ends
// ROLLED_BACK; with another failure it is FAILED; a deployment that failed is FAILED.
func TestNextRolledBack(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		outcome  string
		failTest bool
		want     Phase
	}{
		{"rolled back", DeployRolledBack, false, RolledBack},
		{"rolled back and a test failed", DeployRolledBack, true, Failed},
		{"deployment failed", DeployFailed, false, Failed},
	} {
		t.Run(c.name, func(t *testing.T) {
			x := newSim(t, dag("build", "test", "deploy:build"), Trigger{Kind: "push"})
			x.finish("build", StatusSucceeded)
			if c.failTest {
				x.finish("test", StatusFailed)
			} else {
				x.finish("test", StatusSucceeded)
			}
			x.finishDeploy("deploy", c.outcome)
			if x.s.Phase != c.want {
				t.Fatalf("phase %s (%s), want %s", x.s.Phase, x.s.Reason, c.want)
			}
			if again, err := Fold(x.log); err != nil || again.Phase != c.want {
				t.Fatalf("replay: %v, %v", err, again)
			}
		})
	}
	x := newSim(t, dag("deploy"), Trigger{Kind: "push"})
	x.finishDeploy("deploy", DeployRolledBack)
	if x.s.Reason != "rolled back: deploy" {
		t.Errorf("reason %q", x.s.Reason)
	}
}
