package deploy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// Teardown removes an environment: it waits for a deployment in progress to it, stops its
// replicas, closes its proxy (freeing its port) and forgets its address. A marker file keeps
// Start from bringing it back after a restart, until the next deployment to it. Pull
// request previews (pr-<number>) are torn down when their pull request closes. An unknown
// environment is an error wrapping ErrUnknownEnvironment.
func (c *Controller) Teardown(ctx context.Context, name, reason string) error {
	c.mu.Lock()
	env, ok := c.envs[name]
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownEnvironment, name)
	}
	select {
	case env.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-env.sem }()
	c.mu.Lock()
	delete(c.envs, name)
	c.mu.Unlock()
	env.mu.Lock()
	rels := []*release{env.stable, env.warm}
	env.stable, env.warm = nil, nil
	if env.warmStop != nil {
		env.warmStop.Stop()
	}
	env.mu.Unlock()
	env.proxy.Close()
	var wg sync.WaitGroup
	for _, rel := range rels {
		if rel != nil {
			for _, r := range rel.replicas {
				wg.Go(func() { r.Stop(rel.spec.Drain) })
			}
		}
	}
	wg.Wait()
	dir := filepath.Join(c.cfg.Dir, "envs")
	_ = os.Remove(filepath.Join(dir, name+".json"))
	if err := os.WriteFile(filepath.Join(dir, name+".down"), []byte(reason+"\n"), 0o600); err != nil {
		return fmt.Errorf("deploy: teardown of %s: %w", name, err)
	}
	c.log.Info("deploy: environment torn down", "environment", name, "reason", reason)
	return nil
}

// tornDown reports whether Teardown removed the environment after its last deployment.
func (c *Controller) tornDown(name string) bool {
	_, err := os.Stat(filepath.Join(c.cfg.Dir, "envs", name+".down"))
	return err == nil
}
