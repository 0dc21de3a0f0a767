package access

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// holds are the open streams of every token, rechecked together: one goroutine, and per
// tick one look at the store per token (not per stream, never per event), so a thousand
// streams of one UI session cost two reads every RecheckEvery.
type holds struct {
	mu      sync.Mutex
	byToken map[string]map[*hold]struct{}
	running bool
}

type hold struct{ cancel context.CancelCauseFunc }

// Hold returns a context for a long-lived response (an SSE stream) made for p, which ends
// when p's credentials do: at the token's expiry, and within Config.RecheckEvery of its
// revocation, its session's logout, or its user's removal or loss of server admin, also
// when that happened on another server sharing the store. context.Cause of the ended
// context then wraps ErrUnauthenticated and says why. Call the returned func when the
// response is over.
func (s *Service) Hold(ctx context.Context, p *Principal) (context.Context, context.CancelFunc) {
	if p == nil || p.TokenID == "" { // not a request's principal (NewPrincipal): nothing to recheck
		return context.WithCancel(ctx)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	stopDeadline := func() bool { return false }
	if !p.expires.IsZero() {
		// A timer, not context.WithDeadline: Config.Now may be a test's clock, so go by the
		// distance to the expiry rather than the wall-clock instant.
		cause := fmt.Errorf("%w: token %s expired at %s", ErrUnauthenticated, p.TokenID, p.expires.Format(time.RFC3339))
		stopDeadline = time.AfterFunc(p.expires.Sub(s.cfg.Now()), func() { cancel(cause) }).Stop
	}
	h := &hold{cancel: cancel}
	s.holds.mu.Lock()
	if s.holds.byToken == nil {
		s.holds.byToken = map[string]map[*hold]struct{}{}
	}
	if s.holds.byToken[p.TokenID] == nil {
		s.holds.byToken[p.TokenID] = map[*hold]struct{}{}
	}
	s.holds.byToken[p.TokenID][h] = struct{}{}
	if !s.holds.running {
		s.holds.running = true
		go s.recheckLoop()
	}
	s.holds.mu.Unlock()
	return ctx, func() {
		stopDeadline()
		s.holds.mu.Lock()
		delete(s.holds.byToken[p.TokenID], h)
		if len(s.holds.byToken[p.TokenID]) == 0 {
			delete(s.holds.byToken, p.TokenID)
		}
		s.holds.mu.Unlock()
		cancel(context.Canceled)
	}
}

// recheckLoop runs while any stream is held, and ends with the last one.
func (s *Service) recheckLoop() {
	tick := time.NewTicker(s.cfg.RecheckEvery)
	defer tick.Stop()
	for range tick.C {
		s.holds.mu.Lock()
		if len(s.holds.byToken) == 0 {
			s.holds.running = false
			s.holds.mu.Unlock()
			return
		}
		ids := make([]string, 0, len(s.holds.byToken))
		for id := range s.holds.byToken {
			ids = append(ids, id)
		}
		s.holds.mu.Unlock()
		for _, id := range ids {
			err := s.recheck(id)
			if err == nil {
				continue
			}
			if !errors.Is(err, ErrUnauthenticated) {
				// The store is down or slow: streams stay open rather than all end at once;
				// the next tick tries again.
				s.cfg.Logger.Warn("access: rechecking an open stream's token failed", "token", id, "err", err)
				continue
			}
			s.holds.mu.Lock()
			for h := range s.holds.byToken[id] {
				h.cancel(err)
			}
			delete(s.holds.byToken, id)
			s.holds.mu.Unlock()
		}
	}
}

// recheck says whether a token still stands: ErrUnauthenticated with the reason when not.
func (s *Service) recheck(id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RecheckEvery)
	defer cancel()
	t, err := s.st.TokenGet(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return fmt.Errorf("%w: token %s no longer exists", ErrUnauthenticated, id)
	case err != nil:
		return err
	case !t.RevokedAt.IsZero() && t.Session:
		return fmt.Errorf("%w: session %s ended (logged out, password changed or user removed)", ErrUnauthenticated, id)
	}
	_, err = s.standing(ctx, t)
	return err
}
