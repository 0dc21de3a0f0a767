package deploy

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/paved/paved/internal/store"
)

// Leases let the controllers of servers sharing a store act on an environment one at a
// time: a controller restores, deploys to and serves an environment only while it holds
// the lease "env/NAME", renewed every LeaseTTL/3. When its server dies, another takes the
// lease once it expired and restores the environment's last successful deployment.
type Leases interface {
	LeaseAcquire(ctx context.Context, p store.LeaseParams) (bool, error)
	LeaseRenew(ctx context.Context, p store.LeaseRenewParams) ([]string, error)
	LeaseRelease(ctx context.Context, p store.LeaseParams) error
}

func envLease(name string) string { return "env/" + name }

// leaseState is the environments this controller holds.
type leaseState struct {
	mu      sync.Mutex
	held    map[string]bool
	renewed time.Time // the last renewal that went through; only leaseLoop uses it
}

// holds reports whether this controller may act on environment name: always without
// Leases; else it takes the lease if it is free (or already ours).
func (c *Controller) holds(ctx context.Context, name string) (bool, error) {
	if c.cfg.Leases == nil {
		return true, nil
	}
	c.leases.mu.Lock()
	defer c.leases.mu.Unlock()
	now := c.cfg.Now()
	ok, err := c.cfg.Leases.LeaseAcquire(ctx, store.LeaseParams{Name: envLease(name), Owner: c.cfg.Owner, Now: now, Until: now.Add(c.cfg.LeaseTTL)})
	if err != nil {
		return false, fmt.Errorf("deploy: lease of environment %s: %w", name, err)
	}
	if ok {
		c.leases.held[name] = true
	}
	return ok, nil
}

// waitHold waits until this controller holds environment name's lease: another server's
// deployment to it ends first.
func (c *Controller) waitHold(ctx context.Context, name string) error {
	for {
		ok, err := c.holds(ctx, name)
		if ok || err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("deploy: waiting for another server to release environment %s: %w", name, ctx.Err())
		case <-time.After(c.cfg.LeaseTTL / 3):
		}
	}
}

// leaseLoop renews the environments held, stops serving those another server took, and
// takes over (restores) environments whose server died.
func (c *Controller) leaseLoop() {
	defer c.wg.Done()
	tick := time.NewTicker(c.cfg.LeaseTTL / 3)
	defer tick.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-tick.C:
		}
		c.leases.mu.Lock()
		var names []string
		for n := range c.leases.held {
			names = append(names, envLease(n))
		}
		c.leases.mu.Unlock()
		now := c.cfg.Now()
		held, err := c.cfg.Leases.LeaseRenew(c.ctx, store.LeaseRenewParams{Owner: c.cfg.Owner, Names: names, Until: now.Add(c.cfg.LeaseTTL)})
		if err != nil {
			c.log.Error("deploy: renew environment leases", "err", err)
			if !c.leases.renewed.IsZero() && now.Sub(c.leases.renewed) >= c.cfg.LeaseTTL/2 {
				held = []string{} // past the lease another server may serve them: stop here first
			} else {
				continue
			}
		} else {
			c.leases.renewed = now
		}
		for _, n := range names {
			if !slices.Contains(held, n) {
				name := n[len("env/"):]
				c.log.Warn("deploy: another server took the environment; no longer serving it here", "environment", name)
				c.leases.mu.Lock()
				delete(c.leases.held, name)
				c.leases.mu.Unlock()
				c.dropEnv(name)
			}
		}
		if err != nil {
			continue // a controller that cannot keep its leases takes no others
		}
		if err := c.restoreAll(c.ctx); err != nil && c.ctx.Err() == nil {
			c.log.Error("deploy: take over environments", "err", err)
		}
	}
}

// dropEnv stops serving an environment here (its proxy and replicas).
func (c *Controller) dropEnv(name string) {
	c.mu.Lock()
	env := c.envs[name]
	delete(c.envs, name)
	c.mu.Unlock()
	if env == nil {
		return
	}
	env.mu.Lock()
	rels := []*release{env.stable, env.warm}
	if env.warmStop != nil {
		env.warmStop.Stop()
	}
	env.mu.Unlock()
	env.proxy.Close()
	for _, rel := range rels {
		if rel != nil {
			for _, r := range rel.replicas {
				r.Stop(0)
			}
		}
	}
}

// releaseAll gives up every environment lease at Stop, so that another server takes them
// at once.
func (c *Controller) releaseAll() {
	if c.cfg.Leases == nil {
		return
	}
	c.leases.mu.Lock()
	defer c.leases.mu.Unlock()
	for name := range c.leases.held {
		_ = c.cfg.Leases.LeaseRelease(context.Background(), store.LeaseParams{Name: envLease(name), Owner: c.cfg.Owner})
	}
	c.leases.held = map[string]bool{}
}
