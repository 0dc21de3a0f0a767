package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

// Leases is what a scheduler that shares its store with other servers needs: each active
// run is driven by the one server that holds its lease ("run/ID"), renewed by a heartbeat.
// A run whose lease expired (its server died) is claimed by another and recovered by replay,
// as a restarted server recovers its own.
type Leases interface {
	LeaseAcquire(ctx context.Context, p store.LeaseParams) (bool, error)
	LeaseRenew(ctx context.Context, p store.LeaseRenewParams) ([]string, error)
	LeaseRelease(ctx context.Context, p store.LeaseParams) error
	RunLeaseClaim(ctx context.Context, p store.RunLeaseClaimParams) ([]string, error)
}

// CancelRelay carries a cancel request to the server that holds a run's lease
// (PostgreSQL's LISTEN/NOTIFY).
type CancelRelay interface {
	RunCancelNotify(ctx context.Context, payload string) error
	RunCancelListen(ctx context.Context) (<-chan string, error)
}

// errLeaseLost ends the stages of a run another server took over: they are not recorded
// (the new owner recorded them as interrupted and runs them again).
var errLeaseLost = errors.New("schedule: run lease lost to another server")

// DefaultOwner names this process for leases: host, pid and a random suffix, so that a
// restarted process never mistakes its predecessor's leases for its own.
func DefaultOwner() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), uuid.NewString()[:8])
}

func leaseName(runID string) string { return store.RunLeasePrefix + runID }

// leaseStart begins lease mode: it claims the runs nobody holds (all unfinished runs, on
// the first server), then keeps renewing and claiming, and listens for cancels.
func (s *Scheduler) leaseStart(ctx context.Context) error {
	s.renewedAt = s.cfg.Now()
	if err := s.claimOrphans(ctx); err != nil {
		return err
	}
	if s.cfg.CancelRelay != nil {
		ch, err := s.cfg.CancelRelay.RunCancelListen(s.ctx)
		if err != nil {
			return fmt.Errorf("schedule: listen for cancels: %w", err)
		}
		go s.cancelLoop(ch)
	}
	go s.leaseLoop()
	return nil
}

// leaseLoop renews this server's leases every third of the lease time and claims the runs
// of servers that died.
func (s *Scheduler) leaseLoop() {
	tick := time.NewTicker(s.cfg.LeaseTTL / 3)
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		}
		if !s.renew() {
			continue // a server that cannot keep its own leases takes no others
		}
		if err := s.claimOrphans(s.ctx); err != nil && s.ctx.Err() == nil {
			s.log.Error("cannot claim runs of other servers", "err", err)
		}
	}
}

// renew extends the leases of every run this server drives and drops those another
// server took. When renewing fails for half the lease time (the database is unreachable),
// it drops every run: past the lease, another server may take them, and two servers must
// never run one stage. It reports whether the renewal went through.
func (s *Scheduler) renew() bool {
	s.mu.Lock()
	ids := slices.Collect(maps.Keys(s.runs))
	s.mu.Unlock()
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i] = leaseName(id)
	}
	now := s.cfg.Now()
	held, err := s.cfg.Leases.LeaseRenew(s.ctx, store.LeaseRenewParams{Owner: s.cfg.Owner, Names: names, Until: now.Add(s.cfg.LeaseTTL)})
	if err != nil {
		if s.ctx.Err() != nil {
			return false
		}
		s.log.Error("cannot renew run leases", "runs", len(ids), "err", err)
		// At ticks of TTL/3, the second failure in a row comes 2/3 TTL after the last
		// renewal: before the lease expires, whatever the tick's jitter.
		if now.Sub(s.renewedAt) >= s.cfg.LeaseTTL/2 {
			for _, id := range ids {
				s.drop(id, "its lease could not be renewed")
			}
		}
		return false
	}
	s.renewedAt = now
	for _, id := range ids {
		if !slices.Contains(held, leaseName(id)) {
			s.drop(id, "another server took its lease")
		}
	}
	return true
}

// claimOrphans claims the runs without a live lease and recovers them.
func (s *Scheduler) claimOrphans(ctx context.Context) error {
	for {
		now := s.cfg.Now()
		ids, err := s.cfg.Leases.RunLeaseClaim(ctx, store.RunLeaseClaimParams{Owner: s.cfg.Owner, Now: now, Until: now.Add(s.cfg.LeaseTTL), Limit: 100})
		if err != nil {
			return fmt.Errorf("schedule: claim runs: %w", err)
		}
		for _, id := range ids {
			if err := s.adopt(ctx, id); err != nil {
				s.log.Error("cannot recover claimed run", "run", id, "err", err)
				s.releaseLease(id)
			}
		}
		if len(ids) < 100 {
			return nil
		}
	}
}

// adopt recovers a run whose lease this server just took.
func (s *Scheduler) adopt(ctx context.Context, id string) error {
	if s.get(id) != nil {
		return nil // ours already: the lease had lapsed between two renewals
	}
	events, err := s.store.EventList(ctx, store.EventListParams{RunID: id})
	if err != nil {
		return err
	}
	if len(events) == 0 {
		return fmt.Errorf("run %s: %w", id, store.ErrNotFound)
	}
	state, err := run.Fold(events)
	if err != nil {
		return err
	}
	if state.Done() {
		s.releaseLease(id)
		return nil
	}
	a := newActive(state)
	a.mu.Lock()
	older, ok := s.register(a)
	a.mu.Unlock()
	if !ok {
		return nil
	}
	if err := s.recover(ctx, a); err != nil {
		return err
	}
	s.log.Info("took over run", "run", id, "owner", s.cfg.Owner)
	for _, o := range older {
		if err := s.Cancel(ctx, o.id, supersededReason(id)); err != nil && !errors.Is(err, ErrUnknownRun) {
			s.log.Error("cannot cancel superseded run", "run", o.id, "err", err)
		}
	}
	return nil
}

// drop stops driving a run another server owns now: its stages are killed unrecorded and
// the run leaves this scheduler.
func (s *Scheduler) drop(id, why string) {
	a := s.get(id)
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	s.dropLocked(a, why)
}

// dropLocked is drop for a run whose lock the caller holds.
func (s *Scheduler) dropLocked(a *active, why string) {
	if a.lost || a.gone {
		return
	}
	a.lost = true
	for _, cancel := range a.cancels {
		cancel(errLeaseLost)
	}
	s.mu.Lock()
	if s.runs[a.id] == a {
		s.unregisterLocked(a)
	}
	s.mu.Unlock()
	s.signal()
	close(a.done)
	s.log.Warn("dropped run", "run", a.id, "why", why)
}

// checkLeaseLocked answers a failed append in lease mode: a conflict means another writer,
// which is another server that took the run (only the owner appends to an active run). If
// the lease is not ours any more, the run is dropped and the append must not be retried.
func (s *Scheduler) checkLeaseLocked(ctx context.Context, a *active) bool {
	now := s.cfg.Now()
	ok, err := s.cfg.Leases.LeaseAcquire(context.WithoutCancel(ctx), store.LeaseParams{Name: leaseName(a.id), Owner: s.cfg.Owner, Now: now, Until: now.Add(s.cfg.LeaseTTL)})
	if err == nil && ok {
		return true
	}
	s.dropLocked(a, "an append conflicted and its lease is another server's")
	return false
}

func (s *Scheduler) releaseLease(id string) {
	if s.cfg.Leases == nil {
		return
	}
	if err := s.cfg.Leases.LeaseRelease(context.WithoutCancel(s.base), store.LeaseParams{Name: leaseName(id), Owner: s.cfg.Owner}); err != nil {
		s.log.Warn("cannot release run lease (it expires by itself)", "run", id, "err", err)
	}
}

// cancelMessage is a cancel request on its way to a run's owner.
type cancelMessage struct {
	Run    string `json:"run"`
	Reason string `json:"reason"`
}

// cancelRemote cancels a run this server does not drive: it takes the run over if nobody
// holds it, else asks its owner.
func (s *Scheduler) cancelRemote(ctx context.Context, id, reason string) error {
	now := s.cfg.Now()
	ok, err := s.cfg.Leases.LeaseAcquire(ctx, store.LeaseParams{Name: leaseName(id), Owner: s.cfg.Owner, Now: now, Until: now.Add(s.cfg.LeaseTTL)})
	if err != nil {
		return fmt.Errorf("schedule: cancel run %s: %w", id, err)
	}
	if ok {
		if err := s.adopt(ctx, id); err != nil {
			s.releaseLease(id)
			return fmt.Errorf("schedule: cancel run %s: %w", id, err)
		}
		if s.get(id) == nil {
			return ErrUnknownRun // finished
		}
		return s.cancelLocal(ctx, id, reason)
	}
	if s.cfg.CancelRelay == nil {
		return ErrUnknownRun
	}
	b, _ := json.Marshal(cancelMessage{Run: id, Reason: reason})
	if err := s.cfg.CancelRelay.RunCancelNotify(ctx, string(b)); err != nil {
		return fmt.Errorf("schedule: cancel run %s: %w", id, err)
	}
	return nil
}

func (s *Scheduler) cancelLoop(ch <-chan string) {
	for payload := range ch {
		var m cancelMessage
		if json.Unmarshal([]byte(payload), &m) != nil || s.get(m.Run) == nil {
			continue
		}
		if err := s.cancelLocal(s.base, m.Run, m.Reason); err != nil && !errors.Is(err, ErrUnknownRun) {
			s.log.Error("cannot cancel run for another server", "run", m.Run, "err", err)
		}
	}
}
