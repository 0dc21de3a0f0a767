package promote

import (
	"context"
	"fmt"
	"time"

	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

// TimeoutUser is the approver a timeout's decision is recorded under.
const TimeoutUser = "paved:approval-timeout"

// timeouts decides the pending promotions whose environment's approval timeout elapsed:
// on_timeout approve approves one that is not security-critical, anything else is rejected
// as expired. The decision is on the promotion and in the run's events, saying a timeout
// made it and why.
func (s *Service) timeouts(ctx context.Context) error {
	ps, err := s.o.Store.PromotionList(ctx, store.PromotionListParams{State: store.PromotionPending})
	if err != nil {
		return fmt.Errorf("promote: timeouts: %w", err)
	}
	now := s.o.Now()
	for _, p := range ps {
		e, _, ok := s.o.Config.Env(p.Environment)
		if !ok || e.Approval.Timeout <= 0 || p.PendingSince.IsZero() || now.Sub(p.PendingSince) < time.Duration(e.Approval.Timeout) {
			continue
		}
		if err := s.timeOut(ctx, p.ID, e); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) timeOut(ctx context.Context, id string, e Environment) error {
	s.mu.Lock()
	p, err := s.o.Store.PromotionGet(ctx, id)
	if err != nil || p.State != store.PromotionPending {
		s.mu.Unlock()
		return err
	}
	f, err := s.o.Store.FreightGet(ctx, p.Freight)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	waited := time.Duration(e.Approval.Timeout)
	critical := s.critical(p, f)
	approve := e.Approval.OnTimeout == OnTimeoutApprove && critical == ""
	var reason string
	switch {
	case approve:
		reason = fmt.Sprintf("approval timeout: no decision within %s; on_timeout: approve, and the change is not security-critical", waited)
	case e.Approval.OnTimeout == OnTimeoutApprove:
		reason = fmt.Sprintf("approval timeout: expired after %s; not auto-approved because the change is security-critical: %s", waited, critical)
	default:
		reason = fmt.Sprintf("approval timeout: expired after %s (on_timeout: reject)", waited)
	}
	p.Decisions = append(p.Decisions, store.Decision{By: TimeoutUser, Approved: approve, Reason: reason, At: s.o.Now()})
	p.UpdatedAt = s.o.Now()
	if !approve {
		p.State, p.Reason = store.PromotionRejected, reason
	}
	p, err = s.o.Store.PromotionUpdate(ctx, p)
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("promote: timeout of %s: %w", id, err)
	}
	verdict := map[bool]string{true: "approved", false: "rejected"}[approve]
	s.record(ctx, f.RunID, verdict, fmt.Sprintf("%s to %s %s by the approval timeout: %s", p.ID, p.Environment, verdict, reason))
	s.o.Logger.Info("promote: approval timeout", "promotion", p.ID, "approved", approve, "reason", reason)
	if approve {
		_, err = s.advance(ctx, p.ID)
	}
	return err
}

// critical says why a change is security-critical ("" when it is not): a changed file that
// matches a critical glob, or a gate of its run that found anything.
func (s *Service) critical(p store.Promotion, f store.Freight) string {
	if p.BaseSHA == "" && p.Risk == RiskMedium {
		// The changeset is unknown (a first deployment): nothing says it is harmless.
		return "the changeset is unknown (" + p.RiskReason + ")"
	}
	for _, file := range p.Files {
		if g, ok := match(s.o.Config.Risk.Critical, file); ok {
			return fmt.Sprintf("%s matches %s", file, g)
		}
	}
	for _, g := range f.Gates {
		if n := findings(g); n > 0 {
			return fmt.Sprintf("gate %s has %d finding(s)", g.Kind, n)
		}
	}
	return ""
}

func findings(g run.Gate) int {
	n := 0
	for _, c := range g.Counts {
		n += c
	}
	return n
}

// timeoutApproved reports whether the approval timeout approved p.
func timeoutApproved(p store.Promotion) bool {
	for _, d := range p.Decisions {
		if d.By == TimeoutUser && d.Approved {
			return true
		}
	}
	return false
}
