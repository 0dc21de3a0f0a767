package kube

import (
	"context"
	"errors"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/paved/paved/internal/deploy"
)

// AnnotScaleDownAt is when (RFC 3339) paved scales a blue-green slot that no longer serves
// to 0 replicas. It lives on the Deployment rather than in paved's memory so that a restart
// of paved, or another paved server, finishes the scale-down; a deployment that takes the
// slot again removes it.
const AnnotScaleDownAt = "paved.dev/scale-down-at"

// Resume finishes the pending scale-downs of spec's environment: the slots due are scaled
// to 0 now, the others when they fall due (unless a deployment to the environment comes
// first). The deploy controller calls it on start for each environment whose last
// deployment had target kubernetes.
func (t *Target) Resume(ctx context.Context, spec deploy.Spec) error {
	spec, err := spec.Defaults()
	if err != nil {
		return err
	}
	if spec.Target != deploy.TargetKubernetes {
		return fmt.Errorf("kube: environment %s has target %q, not kubernetes", spec.Environment, spec.Target)
	}
	client, err := t.cfg.Client(*spec.Kubernetes)
	if err != nil {
		return err
	}
	es, err := t.acquire(ctx, client, spec)
	if err != nil {
		return err
	}
	defer func() { <-es.sem }()
	return t.resume(ctx, es)
}

// scaleDownLater records on the Deployment name that it goes to 0 replicas after
// keep_warm; the environment's timer is armed from it when the deployment ends.
func (d *deployment) scaleDownLater(ctx context.Context, name string) error {
	at := d.t.cfg.Now().Add(d.spec.KeepWarm).UTC().Format(time.RFC3339)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		dep, err := d.c.AppsV1().Deployments(d.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if dep.Annotations == nil {
			dep.Annotations = map[string]string{}
		}
		dep.Annotations[AnnotScaleDownAt] = at
		_, err = d.c.AppsV1().Deployments(d.ns).Update(ctx, dep, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("kube: record the scale-down of %s/%s: %w", d.ns, name, err)
	}
	d.log("keeping %s/%s warm for %s (scale-down at %s)", d.ns, name, d.spec.KeepWarm, at)
	return nil
}

// resume scales the environment's Deployments whose scale-down is due to 0 and arms its
// timer for the earliest one still pending. The caller holds es.sem.
func (t *Target) resume(ctx context.Context, es *envState) error {
	t.mu.Lock()
	c, ns, name := es.c, es.ns, es.name
	t.mu.Unlock()
	sel := labels.SelectorFromSet(map[string]string{LabelEnvironment: name, LabelManagedBy: "paved"}).String()
	deps, err := c.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return fmt.Errorf("kube: list deployments of %s/%s: %w", ns, name, err)
	}
	// The slot the Service selects serves: never scale it down, whatever it says.
	active := ""
	if svc, err := c.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
		active = svc.Spec.Selector[LabelSlot]
	}
	now := t.cfg.Now()
	var next time.Time
	var errs []error
	for _, dep := range deps.Items {
		v, ok := dep.Annotations[AnnotScaleDownAt]
		if !ok {
			continue
		}
		at, perr := time.Parse(time.RFC3339, v)
		serving := active != "" && dep.Spec.Template.Labels[LabelSlot] == active
		switch {
		case serving || perr != nil:
			why := "it serves"
			if perr != nil {
				why = fmt.Sprintf("%q is not an RFC 3339 time", v)
			}
			t.cfg.Logger.Warn("kube: dropping a scale-down", "deployment", ns+"/"+dep.Name, "why", why)
			errs = append(errs, t.finishScaleDown(ctx, c, ns, dep.Name, false))
		case !at.After(now):
			t.cfg.Logger.Info("kube: scaling down the old blue-green slot", "deployment", ns+"/"+dep.Name, "due", v)
			errs = append(errs, t.finishScaleDown(ctx, c, ns, dep.Name, true))
		case next.IsZero() || at.Before(next):
			next = at
		}
	}
	if !next.IsZero() {
		t.arm(es, next.Sub(now))
	}
	return errors.Join(errs...)
}

// finishScaleDown removes the due time from the Deployment and, when scale is set, its
// replicas, in one update: a slot is never left at 0 still marked pending, nor unmarked
// still running.
func (t *Target) finishScaleDown(ctx context.Context, c kubernetes.Interface, ns, name string, scale bool) error {
	deps := c.AppsV1().Deployments(ns)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		dep, err := deps.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if _, ok := dep.Annotations[AnnotScaleDownAt]; !ok {
			return nil // a deployment took the slot meanwhile
		}
		delete(dep.Annotations, AnnotScaleDownAt)
		if scale {
			dep.Spec.Replicas = ptr(int32(0))
		}
		_, err = deps.Update(ctx, dep, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("kube: scale down %s/%s: %w", ns, name, err)
	}
	return nil
}

// arm sets the environment's timer to run resume after d, holding the environment.
func (t *Target) arm(es *envState, d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	if es.timer != nil {
		es.timer.Stop()
	}
	es.timer = time.AfterFunc(d, func() {
		t.mu.Lock()
		if t.stopped {
			t.mu.Unlock()
			return
		}
		t.fires.Add(1)
		t.mu.Unlock()
		defer t.fires.Done()
		select {
		case es.sem <- struct{}{}:
		case <-t.done:
			return
		}
		defer func() { <-es.sem }()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := t.resume(ctx, es); err != nil {
			t.cfg.Logger.Warn("kube: pending scale-downs", "environment", es.name, "err", err)
		}
	})
}
