package kube_test

import (
	"context"
	"testing"
	"time"

	"github.com/paved/paved/internal/deploy"
	"github.com/paved/paved/internal/deploy/kube"
	"github.com/paved/paved/internal/store"
)

// TestBlueGreenScaleDownSurvivesRestart: the old slot's scale-down is on its Deployment, so
// a target made after the first one stopped (paved restarted) finishes it: at once when it
// is due, by its timer when it is not; a deployment that takes the slot again cancels it.
func TestBlueGreenScaleDownSurvivesRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	spec := e.spec("cart", deploy.BlueGreen, 2)
	spec.KeepWarm = time.Hour
	deployWith := func(tg *kube.Target, s deploy.Spec, artifact string) {
		t.Helper()
		e.target = tg
		if res, rec := e.deploy(s, artifact); res.Outcome != store.DeploymentSucceeded {
			t.Fatalf("%s: %+v\n%s", artifact[:12], res, rec.text())
		}
	}
	resume := func(tg *kube.Target) {
		t.Helper()
		if err := tg.Resume(context.Background(), spec); err != nil {
			t.Fatal(err)
		}
	}
	replicas := func(name string) int32 { return *e.deployment(name).Spec.Replicas }
	pending := func(name string) string { return e.deployment(name).Annotations[kube.AnnotScaleDownAt] }

	first := kube.New(kube.Config{})
	deployWith(first, spec, v1) // blue
	deployWith(first, spec, v2) // green; blue warm for an hour
	first.Stop()
	if pending("cart-blue") == "" || replicas("cart-blue") != 2 {
		t.Fatalf("blue after the switch to green: %d replicas, scale-down at %q", replicas("cart-blue"), pending("cart-blue"))
	}

	// A new target an hour later than now would be: the scale-down is due at once.
	later := kube.New(kube.Config{Now: func() time.Time { return time.Now().Add(2 * time.Hour) }})
	t.Cleanup(later.Stop)
	resume(later)
	if replicas("cart-blue") != 0 || pending("cart-blue") != "" {
		t.Errorf("blue after a resume past its due time: %d replicas, scale-down at %q", replicas("cart-blue"), pending("cart-blue"))
	}

	// v3 takes blue again; green is now the warm one, and a deployment to green (v4)
	// cancels its scale-down.
	second := kube.New(kube.Config{})
	deployWith(second, spec, v3)
	if pending("cart-green") == "" || pending("cart-blue") != "" {
		t.Fatalf("after v3: green scale-down at %q, blue at %q", pending("cart-green"), pending("cart-blue"))
	}
	short := spec
	short.KeepWarm = 3 * time.Second
	deployWith(second, short, v4)
	if pending("cart-green") != "" || replicas("cart-green") != 2 {
		t.Errorf("green serves v4 still marked for a scale-down at %q (%d replicas)", pending("cart-green"), replicas("cart-green"))
	}
	second.Stop() // blue's scale-down, 3s away, is not done by this target

	// Not due yet when the next target starts: its timer does it.
	third := kube.New(kube.Config{})
	t.Cleanup(third.Stop)
	resume(third)
	waitFor(t, "blue scaled down by the new target's timer", func() bool { return replicas("cart-blue") == 0 && pending("cart-blue") == "" })
	if replicas("cart-green") != 2 || e.selector("cart")[kube.LabelSlot] != "green" {
		t.Errorf("green: %d replicas, service selects %v", replicas("cart-green"), e.selector("cart"))
	}
}
