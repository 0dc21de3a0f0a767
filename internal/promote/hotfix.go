package promote

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/paved/paved/internal/pipeline"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

// Hotfix requests an emergency promotion of freight into env by a user in the environment's
// hotfix_users, for reason. It enforces only what must never be skipped (secret detection,
// CRITICAL vulnerabilities, a user other than the author approving when the risk needs an
// approval, the signature check of the deployment itself) and skips the rest: the other
// gates, coverage, verified in and soak in the previous environment, and a second approver.
// What it skipped is listed on the promotion, and a follow-up run of the pipeline's skipped
// gate stages is started at once; its findings are linked from the promotion when it ends.
func (s *Service) Hotfix(ctx context.Context, freight, env, by, reason string) (store.Promotion, error) {
	e, _, ok := s.o.Config.Env(env)
	if !ok {
		return store.Promotion{}, fmt.Errorf("%w %q: the environments are %s", ErrUnknownEnvironment, env, strings.Join(s.o.Config.Names(), ", "))
	}
	if by == "" {
		return store.Promotion{}, fmt.Errorf("%w: say who asks for the hotfix (an API token of a user)", ErrNoUser)
	}
	if !contains(e.HotfixUsers, by) {
		allowed := "nobody: add hotfix_users to " + e.Name + " in the environments config"
		if len(e.HotfixUsers) > 0 {
			allowed = strings.Join(e.HotfixUsers, ", ")
		}
		return store.Promotion{}, fmt.Errorf("%w: %s may not; hotfixes into %s may be asked for by %s", ErrNotHotfixUser, by, e.Name, allowed)
	}
	if strings.TrimSpace(reason) == "" {
		return store.Promotion{}, fmt.Errorf("%w: a hotfix needs --reason (what is broken and why it cannot wait)", ErrNoReason)
	}
	return s.promote(ctx, freight, env, by, true, reason)
}

// followUpKinds are the gate stages a hotfix does not wait for, which its follow-up runs.
// gate/secrets is never skipped; gate/vulns is, below CRITICAL.
var followUpKinds = []string{"gate/sarif", "gate/policy", "gate/sbom", "gate/vulns"}

// followUp starts the follow-up run of a hotfix: the freight's own pipeline cut down to its
// skipped gate stages (and the coverage stages when e has a coverage minimum) with the
// stages they need, never a deploy stage, on the freight's sha.
func (s *Service) followUp(ctx context.Context, p store.Promotion, e Environment, f store.Freight) *store.FollowUp {
	fu := &store.FollowUp{}
	if s.o.CreateRun == nil {
		fu.Note = "no follow-up run: this server cannot start runs from promotions"
		return fu
	}
	events, err := s.o.Store.EventList(ctx, store.EventListParams{RunID: f.RunID, Limit: 1})
	if err != nil || len(events) == 0 || events[0].Info == nil {
		fu.Note = fmt.Sprintf("no follow-up run: the run %s that built %s cannot be read: %v", f.RunID, f.Alias, err)
		return fu
	}
	info := *events[0].Info
	pl := followUpPipeline(info.Pipeline, e.Coverage != nil && e.Coverage.Min > 0)
	if pl == nil {
		fu.Note = "no follow-up run: the pipeline of " + f.Alias + " has no gate stage a hotfix skips (" + strings.Join(followUpKinds, ", ") + ") nor coverage report"
		return fu
	}
	for _, st := range pl.Stages {
		fu.Stages = append(fu.Stages, st.Name)
	}
	info.Pipeline = pl
	info.Trigger = run.Trigger{Kind: "manual", Provider: "promote", Branch: info.Trigger.Branch, Author: p.RequestedBy,
		Message: fmt.Sprintf("follow-up of hotfix %s (%s to %s): the gates it skipped", p.ID, f.Alias, p.Environment)}
	info.Hotfix, info.Priority, info.Group = false, "", ""
	id, err := s.o.CreateRun(context.WithoutCancel(ctx), info)
	if err != nil {
		fu.Note = "no follow-up run: " + err.Error()
		return fu
	}
	fu.RunID = id
	return fu
}

// followUpPipeline keeps the stages a hotfix follow-up runs and what they need; nil when
// there are none.
func followUpPipeline(pl *pipeline.Pipeline, coverage bool) *pipeline.Pipeline {
	if pl == nil {
		return nil
	}
	by := map[string]*pipeline.Stage{}
	for _, st := range pl.Stages {
		by[st.Name] = st
	}
	keep := map[string]bool{}
	var add func(name string)
	add = func(name string) {
		st := by[name]
		if st == nil || keep[name] || st.Deploy != nil {
			return
		}
		keep[name] = true
		for _, n := range st.Needs {
			add(n)
		}
	}
	for _, st := range pl.Stages {
		if slices.Contains(followUpKinds, st.Uses) || (coverage && st.Reports != nil && st.Reports.Coverage != "") {
			add(st.Name)
		}
	}
	if len(keep) == 0 {
		return nil
	}
	out := *pl
	out.Concurrency = nil // a follow-up must not cancel, nor be cancelled by, the service's runs
	out.Stages = nil
	for _, st := range pl.Stages { // pl's order is topological; a subset of it still is
		if !keep[st.Name] {
			continue
		}
		c := *st
		c.Needs = slices.DeleteFunc(slices.Clone(st.Needs), func(n string) bool { return !keep[n] })
		out.Stages = append(out.Stages, &c)
	}
	return &out
}

// followUps links the results of finished follow-up runs to their hotfix promotions.
func (s *Service) followUps(ctx context.Context) error {
	ps, err := s.o.Store.PromotionList(ctx, store.PromotionListParams{Limit: 200})
	if err != nil {
		return fmt.Errorf("promote: follow-ups: %w", err)
	}
	for _, p := range ps {
		if !p.Hotfix || p.FollowUp == nil || p.FollowUp.RunID == "" || p.FollowUp.Phase != "" {
			continue
		}
		events, err := s.o.Store.EventList(ctx, store.EventListParams{RunID: p.FollowUp.RunID})
		if err != nil {
			return fmt.Errorf("promote: follow-up run %s: %w", p.FollowUp.RunID, err)
		}
		st, err := run.Fold(events)
		if err != nil || !st.Phase.Done() {
			continue
		}
		if err := s.linkFollowUp(ctx, p.ID, st); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) linkFollowUp(ctx context.Context, id string, st *run.State) error {
	s.mu.Lock()
	p, err := s.o.Store.PromotionGet(ctx, id)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	fu := *p.FollowUp
	fu.Phase = string(st.Phase)
	fu.Gates = nil
	var parts []string
	for _, stage := range st.Stages {
		for _, g := range stage.Gates {
			fu.Gates = append(fu.Gates, g)
			parts = append(parts, gateLine(g))
		}
		if stage.Coverage != nil && stage.Coverage.Total > 0 {
			parts = append(parts, fmt.Sprintf("coverage %.1f%% (%s)", stage.Coverage.Percent, stage.Def.Name))
		}
	}
	if len(parts) == 0 {
		parts = append(parts, "no gate reported")
	}
	fu.Summary = fmt.Sprintf("%s: %s", fu.Phase, strings.Join(parts, "; "))
	p.FollowUp = &fu
	p.UpdatedAt = s.o.Now()
	p, err = s.o.Store.PromotionUpdate(ctx, p)
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("promote: link follow-up of %s: %w", id, err)
	}
	if f, ferr := s.o.Store.FreightGet(ctx, p.Freight); ferr == nil {
		s.record(ctx, f.RunID, "follow-up", fmt.Sprintf("follow-up run %s of hotfix %s to %s finished %s", fu.RunID, p.ID, p.Environment, fu.Summary))
	}
	s.o.Logger.Info("promote: follow-up finished", "promotion", p.ID, "run", fu.RunID, "summary", fu.Summary)
	return nil
}

// gateLine says a gate's decision and findings in a few words: "gate/sarif block (2 HIGH)".
func gateLine(g run.Gate) string {
	var counts []string
	for sev, n := range g.Counts {
		if n > 0 {
			counts = append(counts, fmt.Sprintf("%d %s", n, sev))
		}
	}
	if len(counts) == 0 {
		return g.Kind + " " + g.Decision + " (no findings)"
	}
	return g.Kind + " " + g.Decision + " (" + strings.Join(sortedDesc(counts), ", ") + ")"
}

func followUpLine(fu *store.FollowUp) string {
	switch {
	case fu == nil:
		return "none"
	case fu.RunID != "":
		return "run " + fu.RunID + " checks " + strings.Join(fu.Stages, ", ")
	}
	return fu.Note
}
