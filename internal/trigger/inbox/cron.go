package inbox

import (
	"context"
	"fmt"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/paved/paved/internal/trigger"
)

// cronState is how far the cron loop has looked.
type cronState struct {
	last time.Time
}

// cronLoop checks the schedules at every minute boundary of the configured clock.
func (in *Inbox) cronLoop() {
	defer in.wg.Done()
	for {
		now := in.cfg.Now()
		next := now.Truncate(time.Minute).Add(time.Minute)
		timer := time.NewTimer(next.Sub(now))
		select {
		case <-in.ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		in.CronTick(in.ctx, in.cfg.Now())
	}
}

// CronTick adds a cron trigger for every schedule of every registered repo's pipeline (on
// its default branch) that fell due after the previous tick and at or before now. The
// delivery id names the repo, schedule and slot, so a slot fires once even if two ticks
// (or two servers sharing the store) see it. Slots missed while the server was down are
// not made up. Start calls it each minute; tests call it with their own clock.
func (in *Inbox) CronTick(ctx context.Context, now time.Time) {
	if in.cron == nil {
		in.cron = &cronState{last: now}
		return
	}
	from := in.cron.last
	in.cron.last = now
	repos, err := in.cfg.Store.RepoList(ctx)
	if err != nil {
		in.log.Error("cron: list repos", "err", err)
		return
	}
	for _, repo := range repos {
		rev, p, err := in.cfg.Launcher.Pipeline(ctx, repo, "")
		if err != nil || len(p.On.Cron) == 0 {
			continue
		}
		for _, spec := range p.On.Cron {
			sched, err := cron.ParseStandard(spec)
			if err != nil {
				in.log.Error("cron: bad schedule", "repo", repo.FullName, "schedule", spec, "err", err)
				continue
			}
			slot := sched.Next(from)
			if slot.After(now) {
				continue
			}
			// The latest slot in (from, now]: one run per tick even after a long pause.
			for n := sched.Next(slot); !n.After(now); n = sched.Next(n) {
				slot = n
			}
			t := trigger.Trigger{
				Provider: "cron", Kind: trigger.KindCron, Repo: repo.FullName, Ref: "refs/heads/" + rev.Branch,
				Branch: rev.Branch, SHA: rev.SHA, Schedule: spec,
				DeliveryID: fmt.Sprintf("%s %s %s", repo.FullName, spec, slot.UTC().Format(time.RFC3339)),
			}
			if _, err := in.Add(ctx, t); err != nil {
				in.log.Error("cron: add trigger", "repo", repo.FullName, "schedule", spec, "err", err)
			}
		}
	}
}
